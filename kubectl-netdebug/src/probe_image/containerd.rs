//! This machine's containerd (a single-node lab cluster): `ctr -n k8s.io images import`, into
//! the namespace the kubelet's CRI uses, then a check that the image is listed under its name.

use std::path::Path;
use std::time::Duration;

use super::{tools, ImageError};

const MISSING: &str = "install containerd's ctr (Debian: containerd), or load the image with \
    --kind CLUSTER or --out FILE";

/// Listing images answers at once.
const LIST_DEADLINE: Duration = Duration::from_secs(30);

/// Import the archive and check that `reference` is there afterwards.
pub async fn import(
    socket: &Path,
    archive: &Path,
    reference: &str,
    limit: Duration,
) -> Result<(), ImageError> {
    let base = [
        "-a".to_string(),
        socket.display().to_string(),
        "-n".to_string(),
        "k8s.io".to_string(),
        "images".to_string(),
    ];
    let import: Vec<String> = base
        .iter()
        .cloned()
        .chain(["import".to_string(), archive.display().to_string()])
        .collect();
    tools::run("ctr", &import, limit, MISSING).await?;
    let list: Vec<String> = base
        .iter()
        .cloned()
        .chain(["ls".to_string(), "-q".to_string()])
        .collect();
    let listed = tools::run("ctr", &list, LIST_DEADLINE, MISSING).await?;
    if listed.stdout.lines().any(|l| l.trim() == reference) {
        Ok(())
    } else {
        Err(ImageError::NotListed {
            socket: socket.to_path_buf(),
            reference: reference.to_string(),
        })
    }
}
