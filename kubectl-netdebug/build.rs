//! Pins the default probe image by digest when one is known at build time.
//!
//! Source of the digest, first found wins:
//! 1. `NETDEBUG_PROBE_DIGEST` (the release workflow passes the digest of the image it pushed);
//! 2. `images/probe.digest` at the workspace root (written by `cargo xtask image --pin`).
//!
//! With a digest the default image is `REPO:vVERSION@sha256:...`; without one it is
//! `REPO:vVERSION` and `kubectl netdebug version` says it is not digest-pinned. A malformed digest
//! fails the build: shipping a client whose default image cannot be pulled is worse than no build.
//!
//! Output, read by `src/image.rs` with `env!` (each empty when unpinned):
//! `NETDEBUG_PROBE_DIGEST_SUFFIX` (`@sha256:...`), `NETDEBUG_PROBE_DIGEST_VALUE` (`sha256:...`)
//! and `NETDEBUG_PROBE_DIGEST_SOURCE` (where the digest came from).

use std::path::PathBuf;

const ENV: &str = "NETDEBUG_PROBE_DIGEST";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={ENV}");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let images = manifest_dir.join("..").join("images");
    let pin_file = images.join("probe.digest");
    // Watch the directory, not the file: a missing file would make cargo rerun this every build,
    // and the directory's listing changes when `cargo xtask image --pin` creates the file.
    if images.is_dir() {
        println!("cargo:rerun-if-changed={}", images.display());
    }

    let found = match std::env::var(ENV) {
        Ok(v) => {
            if v.trim().is_empty() {
                fail(&format!(
                    "{ENV} is set but empty; set it to the probe image's digest (sha256:<64 hex>) \
                     or unset it for a development build"
                ));
            }
            Some((v, ENV.to_string()))
        }
        Err(std::env::VarError::NotUnicode(_)) => fail(&format!("{ENV} is not valid UTF-8")),
        Err(std::env::VarError::NotPresent) => match std::fs::read_to_string(&pin_file) {
            Ok(text) => Some((text, pin_file.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => fail(&format!("cannot read {}: {e}", pin_file.display())),
        },
    };

    let (digest, source) = match found {
        Some((raw, source)) => match validate(&raw) {
            Ok(digest) => (digest, source),
            Err(why) => fail(&format!(
                "malformed probe image digest {:?} from {source}: {why}",
                raw.trim()
            )),
        },
        None => (String::new(), String::new()),
    };
    let suffix = if digest.is_empty() {
        String::new()
    } else {
        format!("@{digest}")
    };
    println!("cargo:rustc-env=NETDEBUG_PROBE_DIGEST_SUFFIX={suffix}");
    println!("cargo:rustc-env=NETDEBUG_PROBE_DIGEST_VALUE={digest}");
    println!("cargo:rustc-env=NETDEBUG_PROBE_DIGEST_SOURCE={source}");
}

/// `sha256:` followed by exactly 64 lowercase hex digits (surrounding whitespace is ignored).
fn validate(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    if d.contains('@') || d.contains('/') {
        return Err("expected only the digest (sha256:<64 hex>), not an image reference".into());
    }
    let hex = d
        .strip_prefix("sha256:")
        .ok_or("expected sha256:<64 lowercase hex digits>")?;
    if hex.len() != 64 {
        return Err(format!("the hex part has {} characters, not 64", hex.len()));
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("the hex part must be lowercase hex digits (0-9a-f)".into());
    }
    Ok(d.to_string())
}

fn fail(message: &str) -> ! {
    // cargo shows a build script's stderr when it fails; `cargo:warning` makes the reason stand out
    // even in a long log.
    println!("cargo:warning={message}");
    eprintln!("error: {message}");
    std::process::exit(1);
}
