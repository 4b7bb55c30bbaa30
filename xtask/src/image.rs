//! `cargo xtask image`: the probe image, built without Docker (the archive itself is
//! `netdebug-oci`'s, shared with `kubectl netdebug image`): builds the static probe unless
//! `--probe` names one, writes the archive, and with `--pin` records its digest for the client.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use netdebug_oci::build;

use crate::{repo_root, Flags, VERSION};

pub const DEFAULT_REPOSITORY: &str = "ghcr.io/netdebug/netdebug-probe";

pub fn run(flags: &Flags) -> Result<()> {
    let arch = flags.get("arch").unwrap_or("amd64");
    let probe = match flags.path("probe") {
        Some(p) => p,
        None => build_static_probe(arch)?,
    };
    let out = flags
        .path("out")
        .unwrap_or_else(|| repo_root().join("target/netdebug-probe-image.tar"));
    let reference = flags
        .get("ref")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{DEFAULT_REPOSITORY}:v{VERSION}"));
    let binary = std::fs::read(&probe)
        .with_context(|| format!("cannot read the probe binary {}", probe.display()))?;
    let built = build(&binary, &reference, arch, source_date_epoch()?)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &built.archive)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} ({} bytes): {reference}@{}",
        out.display(),
        built.archive.len(),
        built.manifest_digest
    );
    if flags.has("pin") {
        let pin = repo_root().join("images/probe.digest");
        std::fs::write(&pin, format!("{}\n", built.manifest_digest))?;
        println!("pinned {} in {}", built.manifest_digest, pin.display());
    }
    Ok(())
}

fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number")),
        Err(_) => Ok(0),
    }
}

fn build_static_probe(arch: &str) -> Result<PathBuf> {
    let target = match arch {
        "amd64" => "x86_64-unknown-linux-gnu",
        "arm64" => "aarch64-unknown-linux-gnu",
        other => bail!("unknown architecture `{other}` (amd64 or arm64)"),
    };
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "-p", "probe", "--target", target])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(repo_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the static probe failed");
    }
    Ok(repo_root().join(format!("target/{target}/release/netdebug-probe")))
}
