//! The probe image without Docker, as pure code: bytes of a probe binary in, bytes of an OCI
//! image archive out (an OCI image layout plus a Docker `manifest.json`, in one tar), and the
//! ELF checks a binary must pass to be the only file of a `FROM scratch` image.
//!
//! Shared by `cargo xtask image` and `kubectl netdebug image`, so that the same binary gives the
//! same image digest whichever of the two built it. No I/O beyond the bytes handed in.

mod archive;
pub mod elf;

pub use archive::{add_file, build, read_entries, tag_of, Built, Image, IMAGE_USER};

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the probe binary is not an ELF executable")]
    NotElf,
    #[error("image reference `{0}` has no tag (expected NAME:TAG)")]
    NoTag(String),
    #[error("writing the image archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding the image metadata: {0}")]
    Json(#[from] serde_json::Error),
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The architectures the probe image is built for, in the OCI (Go) spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// `amd64` or `arm64`: the image config's `architecture`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "amd64" => Some(Arch::Amd64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The Rust target a static probe for this architecture is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The command that builds (and installs) a statically linked probe for this architecture.
    pub fn static_probe_command(self) -> String {
        format!(
            "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo install --locked --path probe \
             --target {}",
            self.rust_target()
        )
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
