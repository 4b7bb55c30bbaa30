//! `cargo xtask <task>`: repository tasks that need no Docker and no network.
//!
//! - `image`: the probe image as an OCI archive (`ctr images import`, `kind load image-archive`,
//!   `docker load`, `skopeo copy oci-archive:`), byte-for-byte reproducible for a given binary.
//! - `dist`: a release archive of the client for Krew.
//! - `krew-manifest`: render krew-manifest.yaml for the archives in a directory and validate it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

mod dist;
mod image;
mod krew;

const USAGE: &str = "\
usage: cargo xtask image [--probe PATH] [--out FILE] [--ref NAME:TAG] [--arch amd64|arm64] [--pin]
       cargo xtask dist --bin PATH --os linux|darwin|windows --arch amd64|arm64 [--out-dir DIR]
       cargo xtask krew-manifest --dist DIR [--tag vX.Y.Z] [--base-url URL] [--out FILE]
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let Some((task, rest)) = args.split_first() else {
        bail!("no task given\n{USAGE}");
    };
    let flags = Flags::parse(rest)?;
    match task.as_str() {
        "image" => image::run(&flags),
        "dist" => dist::run(&flags),
        "krew-manifest" => krew::run(&flags),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}

/// `--name value` pairs and bare `--switch`es.
pub struct Flags {
    pairs: Vec<(String, Option<String>)>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut pairs = Vec::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument `{a}`\n{USAGE}");
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned(),
                _ => None,
            };
            pairs.push((name.to_string(), value));
        }
        Ok(Flags { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .with_context(|| format!("--{name} is required\n{USAGE}"))
    }
}

/// The repository root (xtask's parent directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repo")
        .to_path_buf()
}

pub use netdebug_oci::sha256_hex;

/// The workspace version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
