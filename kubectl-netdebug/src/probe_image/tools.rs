//! Running `kind` and `ctr`: each under a deadline (the child is killed when it passes), and
//! each failure told apart: not installed, timed out, or failed with its own words.

use std::process::Stdio;
use std::time::Duration;

use super::ImageError;

/// What a command that exited 0 printed.
pub struct ToolOutput {
    pub stdout: String,
}

/// Run `tool args...` with no stdin, for at most `limit`. `missing` says what to do when the
/// tool is not installed.
pub async fn run(
    tool: &'static str,
    args: &[String],
    limit: Duration,
    missing: &str,
) -> Result<ToolOutput, ImageError> {
    let command = std::iter::once(tool.to_string())
        .chain(
            args.iter()
                .map(|a| super::shell_path(std::path::Path::new(a))),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let child = tokio::process::Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the wait below (the deadline) kills the child instead of leaving it running.
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::ToolMissing {
                tool,
                hint: missing.to_string(),
            })
        }
        Err(e) => {
            return Err(ImageError::ToolFailed {
                command,
                detail: format!("cannot start it: {e}"),
            })
        }
    };
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => return Err(ImageError::ToolTimedOut { command, limit }),
        Ok(Err(e)) => {
            return Err(ImageError::ToolFailed {
                command,
                detail: e.to_string(),
            })
        }
        Ok(Ok(o)) => o,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let words = last_lines(&stderr, 5);
        let status = match output.status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_string(),
        };
        return Err(ImageError::ToolFailed {
            command,
            detail: if words.is_empty() {
                status
            } else {
                format!("{status}: {words}")
            },
        });
    }
    Ok(ToolOutput {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// The last `n` non-empty lines, joined with `; ` (a tool's error is at the end of its output).
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b; c");
        assert_eq!(last_lines("", 3), "");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn deadline_missing_tool_and_failure() {
        let started = std::time::Instant::now();
        let err = run("sleep", &["30".into()], Duration::from_millis(200), "-")
            .await
            .err()
            .unwrap();
        assert!(matches!(err, ImageError::ToolTimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = run(
            "netdebug-no-such-tool",
            &[],
            Duration::from_secs(5),
            "install it",
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "netdebug-no-such-tool is not on PATH: install it"
        );
        let err = run(
            "sh",
            &["-c".into(), "echo bad >&2; exit 3".into()],
            Duration::from_secs(5),
            "-",
        )
        .await
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "`sh -c 'echo bad >&2; exit 3'` failed: exit code 3: bad"
        );
    }
}
