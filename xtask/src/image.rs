//! The probe image, built without Docker: an OCI image layout (plus a Docker `manifest.json`)
//! in one tar. One layer holding `/netdebug-probe`, numeric non-root user, OCI labels.
//!
//! Reproducible: every timestamp is 0 (or SOURCE_DATE_EPOCH), entries are in a fixed order and
//! gzip headers carry no name or time, so the same binary always gives the same digest.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::{repo_root, sha256_hex, Flags, VERSION};

pub const DEFAULT_REPOSITORY: &str = "ghcr.io/netdebug/netdebug-probe";
/// uid:gid the image runs as: `nobody`, so the restricted Pod Security profile
/// (runAsNonRoot) is satisfied without the client having to override it.
pub const IMAGE_USER: &str = "65534:65534";

pub struct Built {
    pub archive: Vec<u8>,
    /// Digest of the image manifest: what `image@sha256:...` pins.
    pub manifest_digest: String,
}

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

/// Build the archive for `binary`. `reference` is `name:tag`.
pub fn build(binary: &[u8], reference: &str, arch: &str, epoch: u64) -> Result<Built> {
    if !binary.starts_with(b"\x7fELF") {
        bail!("the probe binary is not an ELF executable");
    }
    let tag = reference
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t)
        .with_context(|| format!("image reference `{reference}` has no tag"))?;
    let layer_tar = layer(binary, epoch)?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));
    let layer_gz = gzip(&layer_tar)?;
    let layer_digest = sha256_hex(&layer_gz);

    let created = rfc3339(epoch);
    let labels = json!({
        "org.opencontainers.image.title": "netdebug-probe",
        "org.opencontainers.image.description": "Network evidence probe injected by kubectl-netdebug as an ephemeral container",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.source": "https://github.com/netdebug/kubectl-netdebug",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    });
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "User": IMAGE_USER,
            "Entrypoint": ["/netdebug-probe"],
            "Labels": labels,
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "cargo xtask image" }],
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_digest = sha256_hex(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_bytes.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_gz.len(),
        }],
        "annotations": labels,
    });
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    let manifest_digest = sha256_hex(&manifest_bytes);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_bytes.len(),
            "platform": { "architecture": arch, "os": "linux" },
            "annotations": {
                // OCI wants only the tag here; containerd reads the full name from its own key.
                "org.opencontainers.image.ref.name": tag,
                "io.containerd.image.name": reference,
            },
        }],
    });
    // `docker load` (before Docker 25) reads this file instead of index.json.
    let docker_manifest = json!([{
        "Config": format!("blobs/sha256/{config_digest}"),
        "RepoTags": [reference],
        "Layers": [format!("blobs/sha256/{layer_digest}")],
    }]);

    let mut out = tar::Builder::new(Vec::new());
    add_dir(&mut out, "blobs/", epoch)?;
    add_dir(&mut out, "blobs/sha256/", epoch)?;
    add_file(
        &mut out,
        &format!("blobs/sha256/{config_digest}"),
        &config_bytes,
        0o644,
        epoch,
    )?;
    add_file(
        &mut out,
        &format!("blobs/sha256/{layer_digest}"),
        &layer_gz,
        0o644,
        epoch,
    )?;
    add_file(
        &mut out,
        &format!("blobs/sha256/{manifest_digest}"),
        &manifest_bytes,
        0o644,
        epoch,
    )?;
    add_file(
        &mut out,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
        epoch,
    )?;
    add_file(
        &mut out,
        "index.json",
        &serde_json::to_vec(&index)?,
        0o644,
        epoch,
    )?;
    add_file(
        &mut out,
        "manifest.json",
        &serde_json::to_vec(&docker_manifest)?,
        0o644,
        epoch,
    )?;
    Ok(Built {
        archive: out.into_inner()?,
        manifest_digest: format!("sha256:{manifest_digest}"),
    })
}

fn layer(binary: &[u8], epoch: u64) -> Result<Vec<u8>> {
    let mut t = tar::Builder::new(Vec::new());
    add_file(&mut t, "netdebug-probe", binary, 0o755, epoch)?;
    Ok(t.into_inner()?)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn header(size: u64, mode: u32, epoch: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(epoch);
    h.set_entry_type(kind);
    h
}

pub fn add_file<W: Write>(
    t: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
    epoch: u64,
) -> Result<()> {
    let mut h = header(bytes.len() as u64, mode, epoch, tar::EntryType::Regular);
    t.append_data(&mut h, path, bytes)?;
    Ok(())
}

fn add_dir<W: Write>(t: &mut tar::Builder<W>, path: &str, epoch: u64) -> Result<()> {
    let mut h = header(0, 0o755, epoch, tar::EntryType::Directory);
    t.append_data(&mut h, path, std::io::empty())?;
    Ok(())
}

/// Seconds since the epoch as RFC 3339 UTC, without a date crate (civil-from-days).
fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Read a tar back (used by tests and `krew-manifest`): path -> bytes.
pub fn read_entries<R: std::io::Read>(reader: R) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut a = tar::Archive::new(reader);
    for e in a.entries()? {
        let mut e = e?;
        let path = e.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes)?;
        out.push((path, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_elf() -> Vec<u8> {
        let mut b = b"\x7fELF".to_vec();
        b.extend(std::iter::repeat_n(7u8, 4096));
        b
    }

    #[test]
    fn same_binary_same_digest() {
        let a = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
        let b = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
        assert_eq!(a.archive, b.archive);
        assert_eq!(a.manifest_digest, b.manifest_digest);
        let mut other = fake_elf();
        other.push(1);
        let c = build(&other, "example.test/probe:v1", "amd64", 0).unwrap();
        assert_ne!(a.manifest_digest, c.manifest_digest);
    }

    #[test]
    fn layout_blobs_match_their_digests() {
        let built = build(&fake_elf(), "example.test/probe:v1", "amd64", 0).unwrap();
        let entries = read_entries(&built.archive[..]).unwrap();
        let get = |p: &str| entries.iter().find(|(n, _)| n == p).map(|(_, b)| b.clone());
        assert_eq!(
            get("oci-layout").unwrap(),
            br#"{"imageLayoutVersion":"1.0.0"}"#
        );
        for (name, bytes) in &entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                if !hex.is_empty() {
                    assert_eq!(sha256_hex(bytes), hex, "{name}");
                }
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&get("index.json").unwrap()).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(m["digest"], built.manifest_digest);
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
        let manifest: serde_json::Value = serde_json::from_slice(
            &get(&format!("blobs/sha256/{}", &built.manifest_digest[7..])).unwrap(),
        )
        .unwrap();
        let cfg_digest = manifest["config"]["digest"].as_str().unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&get(&format!("blobs/sha256/{}", &cfg_digest[7..])).unwrap())
                .unwrap();
        assert_eq!(config["config"]["User"], IMAGE_USER);
        assert_eq!(config["config"]["Entrypoint"][0], "/netdebug-probe");
        // The layer holds exactly the probe, executable.
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        let gz = get(&format!("blobs/sha256/{}", &layer_digest[7..])).unwrap();
        let mut tar_bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar_bytes)
            .unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0].as_str().unwrap(),
            format!("sha256:{}", sha256_hex(&tar_bytes))
        );
        let mut layer = tar::Archive::new(&tar_bytes[..]);
        let files: Vec<(String, u32)> = layer
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(files, vec![("netdebug-probe".to_string(), 0o755)]);
    }

    #[test]
    fn refuses_non_elf_and_untagged_references() {
        assert!(build(b"#!/bin/sh", "x/y:v1", "amd64", 0).is_err());
        assert!(build(&fake_elf(), "localhost:5000/probe", "amd64", 0).is_err());
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
