//! The probe image the client injects unless `--image` says otherwise.

/// Default probe image. The release process pins it by digest (`...@sha256:...`); until then it
/// is the tag matching this client's version, so client and probe speak the same protocol.
pub const DEFAULT_PROBE_IMAGE: &str = concat!(
    "ghcr.io/netdebug/netdebug-probe:v",
    env!("CARGO_PKG_VERSION")
);

/// Path of the probe binary inside the image (the image is `FROM scratch` with just this file).
pub const PROBE_PATH_IN_IMAGE: &str = "/netdebug-probe";
