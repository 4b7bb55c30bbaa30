//! Release archives of the client, the files Krew downloads: `kubectl-netdebug_vX.Y.Z_OS_ARCH.tar.gz`
//! with the binary, LICENSE and README at the top level. Reproducible (mtime 0, fixed order).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{repo_root, Flags, VERSION};
use netdebug_oci::add_file;

pub const OSES: &[&str] = &["linux", "darwin", "windows"];
pub const ARCHES: &[&str] = &["amd64", "arm64"];

pub fn archive_name(os: &str, arch: &str) -> String {
    format!("kubectl-netdebug_v{VERSION}_{os}_{arch}.tar.gz")
}

pub fn bin_name(os: &str) -> &'static str {
    if os == "windows" {
        "kubectl-netdebug.exe"
    } else {
        "kubectl-netdebug"
    }
}

pub fn run(flags: &Flags) -> Result<()> {
    let os = flags.require("os")?;
    let arch = flags.require("arch")?;
    let bin = flags
        .path("bin")
        .context("--bin PATH (the built client) is required")?;
    let out_dir = flags
        .path("out-dir")
        .unwrap_or_else(|| repo_root().join("dist"));
    let path = package(&bin, os, arch, &out_dir)?;
    println!("{}", path.display());
    Ok(())
}

pub fn package(bin: &Path, os: &str, arch: &str, out_dir: &Path) -> Result<PathBuf> {
    if !OSES.contains(&os) {
        bail!("unknown os `{os}` (one of {OSES:?})");
    }
    if !ARCHES.contains(&arch) {
        bail!("unknown arch `{arch}` (one of {ARCHES:?})");
    }
    let binary = std::fs::read(bin).with_context(|| format!("cannot read {}", bin.display()))?;
    let root = repo_root();
    let license = std::fs::read(root.join("LICENSE")).context("cannot read LICENSE")?;
    let readme = std::fs::read(root.join("README.md")).context("cannot read README.md")?;
    let mut t = tar::Builder::new(Vec::new());
    add_file(&mut t, bin_name(os), &binary, 0o755, 0)?;
    add_file(&mut t, "LICENSE", &license, 0o644, 0)?;
    add_file(&mut t, "README.md", &readme, 0o644, 0)?;
    let tar_bytes = t.into_inner()?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar_bytes)?;
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(archive_name(os, arch));
    std::fs::write(&path, gz.finish()?)?;
    Ok(path)
}

/// File names inside a `.tar.gz` archive.
pub fn list(archive: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    let entries = netdebug_oci::read_entries(flate2::read::GzDecoder::new(file))?;
    Ok(entries.into_iter().map(|(n, _)| n).collect())
}
