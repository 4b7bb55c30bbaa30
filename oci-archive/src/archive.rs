//! One layer holding `/netdebug-probe`, a numeric non-root user, OCI labels; the OCI layout
//! (`oci-layout`, `index.json`, `blobs/sha256/...`) plus Docker's `manifest.json`, in one tar.
//!
//! Reproducible: every timestamp is 0 (or the caller's SOURCE_DATE_EPOCH), entries are in a
//! fixed order, gzip headers carry no name or time, and JSON keys are sorted (serde_json's
//! default map; the golden-digest test fails if a dependency ever turns on `preserve_order`).
//! So the same binary always gives the same digest.

use std::io::Write;

use serde_json::json;

use crate::{sha256_hex, Error};

/// uid:gid the image runs as: `nobody`, so the restricted Pod Security profile
/// (runAsNonRoot) is satisfied without the client having to override it.
pub const IMAGE_USER: &str = "65534:65534";

/// The workspace version, e.g. `0.1.0` (the image's version label).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Kept as it was when only xtask built the image: the history entry is part of the config
/// blob, so changing it would change the digest of every image built from the same binary.
const CREATED_BY: &str = "cargo xtask image";

/// An archive and what it pins.
pub struct Built {
    pub archive: Vec<u8>,
    /// Digest of the image manifest (`sha256:...`): what `image@sha256:...` pins.
    pub manifest_digest: String,
}

/// The image's blobs. They do not depend on the name it is given, so the digest is known
/// before a reference is chosen (the client derives its default tag from it).
pub struct Image {
    arch: String,
    epoch: u64,
    config: Vec<u8>,
    config_hex: String,
    layer_gz: Vec<u8>,
    layer_hex: String,
    manifest: Vec<u8>,
    manifest_hex: String,
}

/// Build the archive for `binary`. `reference` is `name:tag`.
pub fn build(binary: &[u8], reference: &str, arch: &str, epoch: u64) -> Result<Built, Error> {
    if !binary.starts_with(b"\x7fELF") {
        return Err(Error::NotElf);
    }
    tag_of(reference)?;
    let image = Image::new(binary, arch, epoch)?;
    Ok(Built {
        archive: image.archive(reference)?,
        manifest_digest: image.manifest_digest(),
    })
}

/// The tag of `name:tag` (a `:` inside the registry's host:port is not a tag).
pub fn tag_of(reference: &str) -> Result<&str, Error> {
    reference
        .rsplit_once(':')
        .filter(|(name, t)| !name.is_empty() && !t.is_empty() && !t.contains('/'))
        .map(|(_, t)| t)
        .ok_or_else(|| Error::NoTag(reference.to_string()))
}

impl Image {
    /// The blobs for `binary` (an ELF executable) as architecture `arch` (`amd64`, `arm64`).
    pub fn new(binary: &[u8], arch: &str, epoch: u64) -> Result<Image, Error> {
        if !binary.starts_with(b"\x7fELF") {
            return Err(Error::NotElf);
        }
        let layer_tar = layer(binary, epoch)?;
        let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));
        let layer_gz = gzip(&layer_tar)?;
        let layer_hex = sha256_hex(&layer_gz);
        let created = rfc3339(epoch);
        let labels = labels(&created);
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "created": created,
            "config": {
                "User": IMAGE_USER,
                "Entrypoint": ["/netdebug-probe"],
                "Labels": labels,
            },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
            "history": [{ "created": created, "created_by": CREATED_BY }],
        }))?;
        let config_hex = sha256_hex(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": format!("sha256:{config_hex}"),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": format!("sha256:{layer_hex}"),
                "size": layer_gz.len(),
            }],
            "annotations": labels,
        }))?;
        let manifest_hex = sha256_hex(&manifest);
        Ok(Image {
            arch: arch.to_string(),
            epoch,
            config,
            config_hex,
            layer_gz,
            layer_hex,
            manifest,
            manifest_hex,
        })
    }

    /// `sha256:...` of the manifest.
    pub fn manifest_digest(&self) -> String {
        format!("sha256:{}", self.manifest_hex)
    }

    /// The archive naming the image `reference` (`name:tag`).
    pub fn archive(&self, reference: &str) -> Result<Vec<u8>, Error> {
        let tag = tag_of(reference)?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": self.manifest_digest(),
                "size": self.manifest.len(),
                "platform": { "architecture": self.arch, "os": "linux" },
                "annotations": {
                    // OCI wants only the tag here; containerd reads the full name from its own key.
                    "org.opencontainers.image.ref.name": tag,
                    "io.containerd.image.name": reference,
                },
            }],
        });
        // `docker load` (before Docker 25) reads this file instead of index.json.
        let docker_manifest = json!([{
            "Config": format!("blobs/sha256/{}", self.config_hex),
            "RepoTags": [reference],
            "Layers": [format!("blobs/sha256/{}", self.layer_hex)],
        }]);
        let epoch = self.epoch;
        let mut out = tar::Builder::new(Vec::new());
        add_dir(&mut out, "blobs/", epoch)?;
        add_dir(&mut out, "blobs/sha256/", epoch)?;
        for (hex, bytes) in [
            (&self.config_hex, &self.config),
            (&self.layer_hex, &self.layer_gz),
            (&self.manifest_hex, &self.manifest),
        ] {
            add_file(
                &mut out,
                &format!("blobs/sha256/{hex}"),
                bytes,
                0o644,
                epoch,
            )?;
        }
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        add_file(&mut out, "oci-layout", layout, 0o644, epoch)?;
        let index = serde_json::to_vec(&index)?;
        add_file(&mut out, "index.json", &index, 0o644, epoch)?;
        let docker_manifest = serde_json::to_vec(&docker_manifest)?;
        add_file(&mut out, "manifest.json", &docker_manifest, 0o644, epoch)?;
        Ok(out.into_inner()?)
    }
}

fn labels(created: &str) -> serde_json::Value {
    json!({
        "org.opencontainers.image.title": "netdebug-probe",
        "org.opencontainers.image.description": "Network evidence probe injected by kubectl-netdebug as an ephemeral container",
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.source": "https://github.com/netdebug/kubectl-netdebug",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    })
}

fn layer(binary: &[u8], epoch: u64) -> Result<Vec<u8>, Error> {
    let mut t = tar::Builder::new(Vec::new());
    add_file(&mut t, "netdebug-probe", binary, 0o755, epoch)?;
    Ok(t.into_inner()?)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
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

/// Append a regular file with reproducible metadata (uid/gid 0, mtime `epoch`): also how
/// xtask writes release archives.
pub fn add_file<W: Write>(
    t: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
    epoch: u64,
) -> Result<(), Error> {
    let mut h = header(bytes.len() as u64, mode, epoch, tar::EntryType::Regular);
    t.append_data(&mut h, path, bytes)?;
    Ok(())
}

fn add_dir<W: Write>(t: &mut tar::Builder<W>, path: &str, epoch: u64) -> Result<(), Error> {
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

/// Read a tar back: path -> bytes (tests, and xtask's release-archive checks).
pub fn read_entries<R: std::io::Read>(reader: R) -> Result<Vec<(String, Vec<u8>)>, Error> {
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
mod tests;
