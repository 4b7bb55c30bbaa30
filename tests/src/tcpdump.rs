//! tcpdump as an oracle: capture in a namespace while the probe runs, then read the packets
//! back with `tcpdump -nn -r`.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::cmd::{run_with_timeout, try_run, Drain, DEFAULT_TIMEOUT};
use crate::netns::Netns;

/// A running tcpdump writing a pcap file. Stop it with [`Tcpdump::stop`]; dropping it kills
/// it and deletes the file.
pub struct Tcpdump {
    child: Option<Child>,
    /// Taken by `stop`.
    file: Option<tempfile::NamedTempFile>,
    stderr: Drain,
    command: String,
}

/// What a stopped tcpdump captured.
pub struct Captured {
    /// The pcap file (deleted when this is dropped).
    pub pcap: tempfile::NamedTempFile,
    /// `tcpdump -nn -r` of the file: one line per packet.
    pub text: String,
    /// tcpdump's own summary (`N packets captured`, `N packets dropped by kernel`).
    pub summary: String,
}

impl Captured {
    /// The packet lines.
    pub fn packets(&self) -> Vec<&str> {
        self.text.lines().collect()
    }
}

impl Netns {
    /// Starts `tcpdump -i <iface> -U -w <tempfile> <filter>` in the namespace (`iface` may be
    /// `any`; `filter` may be empty) and returns once tcpdump reports that it is listening.
    #[track_caller]
    pub fn start_tcpdump(&self, iface: &str, filter: &str) -> Tcpdump {
        let file = tempfile::NamedTempFile::new().expect("temporary pcap file");
        let path = file.path().to_string_lossy().into_owned();
        // -Z root: keep root so tcpdump can write the root-owned temporary file.
        // --immediate-mode: hand each packet to tcpdump at once (otherwise libpcap batches
        // them for up to a second and packets still in the kernel ring when we stop are
        // counted "received by filter" but never written).
        let mut argv = vec![
            "tcpdump",
            "-i",
            iface,
            "--immediate-mode",
            "-U",
            "-n",
            "-Z",
            "root",
            "-w",
            &path,
        ];
        argv.extend(filter.split_whitespace());
        let started = self.spawn_until_ready(&argv, "start listening", |stderr| {
            stderr.text().contains("listening on")
        });
        Tcpdump {
            child: Some(started.child),
            file: Some(file),
            stderr: started.stderr,
            command: started.command,
        }
    }
}

impl Tcpdump {
    /// The pcap file being written.
    pub fn pcap_path(&self) -> &std::path::Path {
        self.file.as_ref().expect("capture not stopped").path()
    }

    /// Stops the capture (SIGINT, so tcpdump flushes and prints its counts; SIGKILL after 5 s)
    /// and reads the packets back.
    #[track_caller]
    pub fn stop(mut self) -> Captured {
        let mut child = self.child.take().expect("running tcpdump");
        let file = self.file.take().expect("capture not stopped");
        // Let packets still in flight land in the file: wait (at most 1 s) until its size
        // holds still for 50 ms.
        let settle = Instant::now() + Duration::from_secs(1);
        let mut last = u64::MAX;
        while Instant::now() < settle {
            let size = std::fs::metadata(file.path()).map(|m| m.len()).unwrap_or(0);
            if size == last {
                break;
            }
            last = size;
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = try_run(
            Command::new("kill").args(["-INT", &child.id().to_string()]),
            DEFAULT_TIMEOUT,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        self.stderr.finish(Duration::from_secs(1));
        let read = run_with_timeout(
            Command::new("tcpdump").args(["-nn", "-r"]).arg(file.path()),
            DEFAULT_TIMEOUT,
        );
        assert!(
            read.success(),
            "`{}` wrote an unreadable pcap: {}",
            self.command,
            read.stderr
        );
        let summary = self
            .stderr
            .text()
            .lines()
            .filter(|l| l.contains("packets"))
            .collect::<Vec<_>>()
            .join("; ");
        Captured {
            pcap: file,
            text: read.stdout,
            summary,
        }
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
