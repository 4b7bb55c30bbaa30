//! A kind cluster: the name checked against `kind get clusters`, then
//! `kind load image-archive FILE --name CLUSTER` (kind imports it into every node's containerd).

use std::path::Path;
use std::time::Duration;

use super::{tools, ImageError};

const MISSING: &str = "install kind (https://kind.sigs.k8s.io), or load the image with \
    --containerd SOCKET or --out FILE";

/// `kind get clusters` answers at once; a minute covers a slow container runtime.
const LIST_DEADLINE: Duration = Duration::from_secs(60);

/// The clusters `kind get clusters` lists (it prints "No kind clusters found." on stderr and
/// nothing on stdout when there are none).
pub async fn clusters() -> Result<Vec<String>, ImageError> {
    let out = tools::run(
        "kind",
        &["get".into(), "clusters".into()],
        LIST_DEADLINE,
        MISSING,
    )
    .await?;
    Ok(parse_clusters(&out.stdout))
}

fn parse_clusters(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("No kind clusters"))
        .map(str::to_string)
        .collect()
}

/// Fail unless kind knows `name`; the error lists the clusters there are.
pub async fn check_cluster(name: &str) -> Result<(), ImageError> {
    let clusters = clusters().await?;
    if clusters.iter().any(|c| c == name) {
        Ok(())
    } else {
        Err(ImageError::KindClusterNotFound {
            name: name.to_string(),
            clusters,
        })
    }
}

/// Load the archive into every node of cluster `name`.
pub async fn load(name: &str, archive: &Path, limit: Duration) -> Result<(), ImageError> {
    let args = [
        "load".to_string(),
        "image-archive".to_string(),
        archive.display().to_string(),
        "--name".to_string(),
        name.to_string(),
    ];
    tools::run("kind", &args, limit, MISSING).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_list() {
        assert_eq!(parse_clusters("dev\ne2e\n"), ["dev", "e2e"]);
        assert!(parse_clusters("No kind clusters found.\n").is_empty());
        assert!(parse_clusters("").is_empty());
    }
}
