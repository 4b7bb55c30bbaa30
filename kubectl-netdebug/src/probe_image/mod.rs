//! `kubectl netdebug image build|load`: the probe image for a cluster without a registry.
//! The archive is built here from the installed probe binary (no Docker, the same bytes
//! `cargo xtask image` gives), then loaded where the nodes run it: a kind cluster through
//! `kind load image-archive`, this machine's containerd through `ctr images import`, or a file
//! with the command to import it on each node. Every external command and the API server get
//! a deadline. The last line says which `--image` to run with.

mod archive;
mod containerd;
mod detect;
mod kind;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ImageArgs, ImageBuildArgs, ImageCommand, ImageLoadArgs};

pub use archive::{default_reference, BuiltImage};
pub use detect::kind_cluster_of;

/// How long the API server gets to say what the cluster is (connect and list nodes).
pub const DETECT_DEADLINE: Duration = Duration::from_secs(10);

/// The options `image load` offers, for messages that must name them.
const LOAD_OPTIONS: &str = "--kind CLUSTER (a kind cluster), --containerd SOCKET (the \
    containerd of a single-node cluster on this machine) or --out FILE (write the archive and \
    import it on each node with ctr)";

/// Why the image could not be built or loaded. Each names the file, the command or the server.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{detail}: pass --probe PATH, or build and install a static probe: {command}")]
    ProbeNotFound { detail: String, command: String },
    #[error("cannot read the probe binary {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} cannot be the probe image's only file: {why}. {fix}")]
    NotStatic {
        path: PathBuf,
        why: netdebug_oci::elf::ElfError,
        fix: String,
    },
    #[error("--ref {reference}: {why}")]
    BadReference { reference: String, why: String },
    #[error("building the image archive: {0}")]
    Archive(#[from] netdebug_oci::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} is not on PATH: {hint}")]
    ToolMissing { tool: &'static str, hint: String },
    #[error("`{command}` failed: {detail}")]
    ToolFailed { command: String, detail: String },
    #[error("`{command}` did not finish within {} s (stopped)", .limit.as_secs())]
    ToolTimedOut { command: String, limit: Duration },
    #[error("kind cluster \"{name}\" does not exist ({})", list_clusters(.clusters))]
    KindClusterNotFound { name: String, clusters: Vec<String> },
    #[error("no containerd socket at {0} (pass the socket of the node's containerd, e.g. /run/containerd/containerd.sock)")]
    NoSocket(PathBuf),
    #[error(
        "`ctr images import` succeeded but the containerd at {socket} does not list {reference}"
    )]
    NotListed { socket: PathBuf, reference: String },
    #[error(
        "cannot reach the API server at {server} (context {context}) to tell how to load the \
         image: {detail}. Say where to load it: {LOAD_OPTIONS}"
    )]
    ClusterUnreachable {
        server: String,
        context: String,
        detail: String,
    },
    #[error("cannot tell how to load the image into the cluster at {server}: {detail}. Say where to load it: {LOAD_OPTIONS}")]
    NotDetected { server: String, detail: String },
    /// The kubeconfig could not be used (named by the connect module's own message).
    #[error("{0}; or say where to load the image: {LOAD_OPTIONS}")]
    Kubeconfig(String),
}

fn list_clusters(clusters: &[String]) -> String {
    if clusters.is_empty() {
        "`kind get clusters` lists none; create one with `kind create cluster`".into()
    } else {
        format!("kind clusters here: {}", clusters.join(", "))
    }
}

/// Run `kubectl netdebug image ...`.
pub async fn run(args: ImageArgs) -> crate::error::Result<i32> {
    match args.command {
        ImageCommand::Build(b) => build(b),
        ImageCommand::Load(l) => load(l).await,
    }
    .map_err(crate::error::Error::from)?;
    Ok(0)
}

fn build(args: ImageBuildArgs) -> Result<(), ImageError> {
    let image = archive::build(&args.source)?;
    write_archive(&image, &args.out)?;
    println!("probe    {}", image.probe.display());
    println!(
        "archive  {} ({}, image {})",
        args.out.display(),
        human_size(image.archive.len()),
        image.digest
    );
    let file = shell_path(&args.out);
    println!(
        "load it  kubectl netdebug image load (or: kind load image-archive {file} --name CLUSTER; \
         on each node: ctr -n k8s.io images import {file})"
    );
    println!("run with: kubectl netdebug POD --image {}", image.reference);
    Ok(())
}

/// Where `image load` puts the image, checked before anything is built.
enum Destination {
    File(PathBuf),
    Containerd(PathBuf),
    Kind(String),
}

async fn destination(args: &ImageLoadArgs) -> Result<Destination, ImageError> {
    if let Some(out) = &args.out {
        return Ok(Destination::File(out.clone()));
    }
    if let Some(socket) = &args.containerd {
        // ctr would wait for a socket that is not there; say so at once.
        if !socket.exists() {
            return Err(ImageError::NoSocket(socket.clone()));
        }
        return Ok(Destination::Containerd(socket.clone()));
    }
    let cluster = match &args.kind {
        Some(name) => name.clone(),
        None => detect::kind_cluster(&args.kube).await?,
    };
    kind::check_cluster(&cluster).await?;
    Ok(Destination::Kind(cluster))
}

async fn load(args: ImageLoadArgs) -> Result<(), ImageError> {
    let destination = destination(&args).await?;
    let image = archive::build(&args.source)?;
    match destination {
        Destination::File(out) => {
            write_archive(&image, &out)?;
            println!(
                "archive  {} ({}, image {})",
                out.display(),
                human_size(image.archive.len()),
                image.digest
            );
            detect::print_node_commands(&args.kube, &out).await;
        }
        Destination::Containerd(socket) => {
            let file = TempArchive::write(&image)?;
            containerd::import(&socket, file.path(), &image.reference, args.timeout).await?;
            println!(
                "imported {} into the containerd at {}",
                image.reference,
                socket.display()
            );
        }
        Destination::Kind(cluster) => {
            let file = TempArchive::write(&image)?;
            kind::load(&cluster, file.path(), args.timeout).await?;
            println!("loaded {} into kind cluster {cluster}", image.reference);
        }
    }
    println!("run with: kubectl netdebug POD --image {}", image.reference);
    Ok(())
}

fn write_archive(image: &BuiltImage, out: &Path) -> Result<(), ImageError> {
    std::fs::write(out, &image.archive).map_err(|source| ImageError::Write {
        path: out.to_path_buf(),
        source,
    })
}

/// The archive in a file of its own under the temporary directory, removed when dropped (the
/// tools read a file; the user asked for none).
struct TempArchive(PathBuf);

impl TempArchive {
    fn write(image: &BuiltImage) -> Result<TempArchive, ImageError> {
        let name = format!(
            "netdebug-probe-{}-{}.tar",
            std::process::id(),
            &image.digest.trim_start_matches("sha256:")[..12]
        );
        let path = std::env::temp_dir().join(name);
        write_archive(image, &path)?;
        Ok(TempArchive(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempArchive {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// A path as it can be pasted into a shell (quoted when it needs to be).
fn shell_path(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_paths() {
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
        assert_eq!(shell_path(Path::new("/tmp/a.tar")), "/tmp/a.tar");
        assert_eq!(shell_path(Path::new("my file.tar")), "'my file.tar'");
    }

    #[test]
    fn kind_errors_list_the_clusters() {
        let e = ImageError::KindClusterNotFound {
            name: "nope".into(),
            clusters: vec!["dev".into(), "e2e".into()],
        };
        assert_eq!(
            e.to_string(),
            "kind cluster \"nope\" does not exist (kind clusters here: dev, e2e)"
        );
    }
}
