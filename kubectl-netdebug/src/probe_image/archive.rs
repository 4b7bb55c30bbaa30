//! The image archive from the probe binary: found the way local mode finds it, checked to be
//! a static executable for the nodes' architecture (the image is FROM scratch), named.

use std::path::PathBuf;

use netdebug_oci::elf::{check_static, ElfError};
use netdebug_oci::Arch;

use super::ImageError;
use crate::cli::ImageSourceArgs;
use crate::image::PROBE_REPOSITORY;
use crate::local::{find_probe, PROBE_BINARY};

/// An image ready to be written or loaded.
pub struct BuiltImage {
    /// The binary it was built from.
    pub probe: PathBuf,
    pub archive: Vec<u8>,
    /// `sha256:...` of the manifest.
    pub digest: String,
    /// `name:tag`, what `--image` must say.
    pub reference: String,
}

/// Build the image `args` describe. A bad `--ref` is refused before the binary is read.
pub fn build(args: &ImageSourceArgs) -> Result<BuiltImage, ImageError> {
    let arch = args.arch.oci();
    if let Some(reference) = &args.reference {
        check_reference(reference).map_err(|why| ImageError::BadReference {
            reference: reference.clone(),
            why,
        })?;
    }
    let probe = match &args.probe {
        Some(p) => p.clone(),
        None => find_probe().map_err(|e| ImageError::ProbeNotFound {
            detail: e.to_string(),
            command: arch.static_probe_command(),
        })?,
    };
    let binary = std::fs::read(&probe).map_err(|source| ImageError::Read {
        path: probe.clone(),
        source,
    })?;
    check_static(&binary, arch).map_err(|why| ImageError::NotStatic {
        path: probe.clone(),
        fix: fix_for(&why, arch),
        why,
    })?;
    // Epoch 0, as `cargo xtask image` without SOURCE_DATE_EPOCH: the same binary gives the
    // same digest whichever tool built it.
    let image = netdebug_oci::Image::new(&binary, arch.as_str(), 0)?;
    let digest = image.manifest_digest();
    let reference = args
        .reference
        .clone()
        .unwrap_or_else(|| default_reference(&digest));
    let archive = image.archive(&reference)?;
    Ok(BuiltImage {
        probe,
        archive,
        digest,
        reference,
    })
}

/// What to do about a binary that cannot be the image.
fn fix_for(why: &ElfError, arch: Arch) -> String {
    match why {
        ElfError::WrongArch { .. } => format!(
            "Pass --arch to match the binary if the nodes are that architecture; for {arch} \
             nodes build a static {PROBE_BINARY}: {}",
            arch.static_probe_command()
        ),
        _ => format!(
            "Build a static {PROBE_BINARY}: {}",
            arch.static_probe_command()
        ),
    }
}

/// The probe repository, tagged `vVERSION-local-DIGEST12`: a tag no registry publishes
/// (releases are `vX.Y.Z`), so the name never stands for another image, and not `latest`, so
/// the kubelet's default policy (IfNotPresent) runs the loaded copy instead of pulling.
pub fn default_reference(digest: &str) -> String {
    let hex = digest.trim_start_matches("sha256:");
    format!(
        "{PROBE_REPOSITORY}:v{}-local-{}",
        env!("CARGO_PKG_VERSION"),
        &hex[..hex.len().min(12)]
    )
}

/// `--ref` must be a name the kubelet accepts and runs without pulling: NAME:TAG, no digest
/// (a loaded image is found by its name), not `latest`.
fn check_reference(reference: &str) -> Result<(), String> {
    if reference.contains('@') {
        return Err("give NAME:TAG: a loaded image is found by name, not by digest".into());
    }
    let tag = netdebug_oci::tag_of(reference).map_err(|_| "no tag: give NAME:TAG".to_string())?;
    let name = &reference[..reference.len() - tag.len() - 1];
    let name_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
        && !name.starts_with('/')
        && !name.ends_with('/');
    if !name_ok {
        return Err(format!(
            "`{name}` is not an image name (lowercase letters, digits, `.`, `_`, `-`, `/`)"
        ));
    }
    let tag_ok = tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !tag_ok {
        return Err(format!(
            "`{tag}` is not a tag (letters, digits, `.`, `_`, `-`)"
        ));
    }
    if tag == "latest" {
        return Err(
            "the kubelet pulls a `latest` image every time (imagePullPolicy Always) \
                    and there is no registry to pull it from: choose another tag"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reference_is_versioned_and_digest_tagged() {
        let r = default_reference(&format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(
            r,
            format!(
                "ghcr.io/netdebug/netdebug-probe:v{}-local-abababababab",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(check_reference(&r), Ok(()));
    }

    #[test]
    fn references() {
        assert_eq!(
            check_reference("localhost:5000/netdebug/probe:lab-1"),
            Ok(())
        );
        for bad in [
            "probe",
            "probe:",
            "Probe:v1",
            "probe:latest",
            "probe:v1@sha256:00",
            "probe:v 1",
            "/probe:v1",
            "probe:-v1",
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
        assert!(check_reference("probe:latest")
            .unwrap_err()
            .contains("Always"));
    }
}
