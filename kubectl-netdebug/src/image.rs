//! The probe image the client injects unless `--image` says otherwise.

/// Repository of the released probe image.
pub const PROBE_REPOSITORY: &str = "ghcr.io/netdebug/netdebug-probe";

/// Default probe image: the tag matching this client's version (so client and probe speak the
/// same protocol), pinned by digest (`...:vX.Y.Z@sha256:...`) when the build knew the digest
/// (`NETDEBUG_PROBE_DIGEST` or `images/probe.digest`, see `build.rs`); release builds always do.
pub const DEFAULT_PROBE_IMAGE: &str = concat!(
    "ghcr.io/netdebug/netdebug-probe:v",
    env!("CARGO_PKG_VERSION"),
    env!("NETDEBUG_PROBE_DIGEST_SUFFIX")
);

/// The digest [`DEFAULT_PROBE_IMAGE`] is pinned to (`sha256:...`), or None in a development build.
pub const PROBE_IMAGE_DIGEST: Option<&str> = {
    let digest = env!("NETDEBUG_PROBE_DIGEST_VALUE");
    if digest.is_empty() {
        None
    } else {
        Some(digest)
    }
};

/// Where the build found the digest (`NETDEBUG_PROBE_DIGEST` or the path of `images/probe.digest`).
pub const PROBE_IMAGE_DIGEST_SOURCE: &str = env!("NETDEBUG_PROBE_DIGEST_SOURCE");

/// One line for `kubectl netdebug version` about the pin.
pub fn pin_status() -> String {
    match PROBE_IMAGE_DIGEST {
        Some(d) => format!("probe image pinned by digest {d}"),
        None => "probe image not digest-pinned (development build: the tag is used as is; \
                 release builds pin it)"
            .to_string(),
    }
}

/// Path of the probe binary inside the image (the image is `FROM scratch` with just this file).
pub const PROBE_PATH_IN_IMAGE: &str = "/netdebug-probe";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_image_has_the_version_tag_and_a_well_formed_pin() {
        let tagged = format!("{PROBE_REPOSITORY}:v{}", env!("CARGO_PKG_VERSION"));
        assert!(
            DEFAULT_PROBE_IMAGE.starts_with(&tagged),
            "{DEFAULT_PROBE_IMAGE}"
        );
        match PROBE_IMAGE_DIGEST {
            None => {
                assert_eq!(DEFAULT_PROBE_IMAGE, tagged);
                assert!(PROBE_IMAGE_DIGEST_SOURCE.is_empty());
                assert!(pin_status().contains("not digest-pinned"));
            }
            Some(digest) => {
                assert_eq!(DEFAULT_PROBE_IMAGE, format!("{tagged}@{digest}"));
                let hex = digest.strip_prefix("sha256:").expect("sha256: prefix");
                assert_eq!(hex.len(), 64, "{digest}");
                assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "{digest}"
                );
                assert!(!PROBE_IMAGE_DIGEST_SOURCE.is_empty());
                assert!(pin_status().contains(digest));
            }
        }
    }
}
