//! What the current kube context's cluster is, asked of its API server under a deadline: its
//! nodes say whether it is a kind cluster (and which), and name the nodes an archive must be
//! imported on.

use std::path::Path;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use super::{ImageError, DETECT_DEADLINE};
use crate::cli::KubeArgs;
use crate::connect::connect;
use crate::error::Error;

/// The nodes of the cluster `kube` names, and the context and server asked.
struct Nodes {
    nodes: Vec<Node>,
    context: String,
    server: String,
}

async fn list_nodes(kube: &KubeArgs) -> Result<Nodes, ImageError> {
    let cluster = connect(kube).await.map_err(|e| match e {
        Error::Kubeconfig(m) => ImageError::Kubeconfig(m),
        other => ImageError::Kubeconfig(other.to_string()),
    })?;
    let target = cluster.target.clone();
    let api: Api<Node> = Api::all(cluster.client);
    let listed = tokio::time::timeout(DETECT_DEADLINE, api.list(&ListParams::default())).await;
    let unreachable = |detail: String| ImageError::ClusterUnreachable {
        server: target.server.clone(),
        context: target.context.clone(),
        detail,
    };
    match listed {
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            DETECT_DEADLINE.as_secs()
        ))),
        Ok(Err(e)) => match Error::from_kube("list nodes", e, Some(&target)) {
            Error::Unreachable { detail, .. } => Err(unreachable(detail)),
            other => Err(ImageError::NotDetected {
                server: target.server.clone(),
                detail: other.to_string(),
            }),
        },
        Ok(Ok(list)) => Ok(Nodes {
            nodes: list.items,
            context: target.context.clone(),
            server: target.server.clone(),
        }),
    }
}

/// The kind cluster the current context points at, or why it cannot be told.
pub async fn kind_cluster(kube: &KubeArgs) -> Result<String, ImageError> {
    let found = list_nodes(kube).await?;
    kind_cluster_of(&found.nodes, &found.context).ok_or_else(|| {
        let names: Vec<String> = found.nodes.iter().filter_map(node_name).collect();
        ImageError::NotDetected {
            server: found.server.clone(),
            detail: format!(
                "its nodes ({}) are not kind nodes",
                if names.is_empty() {
                    "none listed".to_string()
                } else {
                    names.join(", ")
                }
            ),
        }
    })
}

fn node_name(n: &Node) -> Option<String> {
    n.metadata.name.clone()
}

/// kind's nodes carry `spec.providerID: kind://docker/CLUSTER/NODE` (`kind://podman/...` with
/// podman). Older kind set none: then a context named `kind-CLUSTER` (what kind writes) and a
/// node named `CLUSTER-control-plane` (how kind names it) together say the same.
pub fn kind_cluster_of(nodes: &[Node], context: &str) -> Option<String> {
    let from_provider = nodes.iter().find_map(|n| {
        let id = n.spec.as_ref()?.provider_id.as_deref()?;
        let mut parts = id.strip_prefix("kind://")?.split('/');
        let _provider = parts.next()?;
        parts.next().filter(|c| !c.is_empty()).map(str::to_string)
    });
    from_provider.or_else(|| {
        let cluster = context.strip_prefix("kind-")?;
        let control_plane = format!("{cluster}-control-plane");
        nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(control_plane.as_str()))
            .then(|| cluster.to_string())
    })
}

/// For `--out FILE`: the command that imports it, per node when the cluster answers.
pub async fn print_node_commands(kube: &KubeArgs, archive: &Path) {
    let file = super::shell_path(archive);
    let command = format!("ctr -n k8s.io images import {file}");
    match list_nodes(kube).await {
        Ok(found) if !found.nodes.is_empty() => {
            println!("import it on each node (copy {file} there first):");
            for name in found.nodes.iter().filter_map(node_name) {
                println!("  node {name}: {command}");
            }
            if let Some(cluster) = kind_cluster_of(&found.nodes, &found.context) {
                println!(
                    "  (a kind cluster: kind load image-archive {file} --name {cluster} does all)"
                );
            }
        }
        Ok(_) => println!("import it on each node (copy {file} there first): {command}"),
        Err(e) => {
            println!("import it on each node (copy {file} there first): {command}");
            println!("  (the nodes are not named: {e})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, provider: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"providerID": provider},
        }))
        .unwrap()
    }

    #[test]
    fn kind_clusters_from_provider_id_or_names() {
        let nodes = [
            node(
                "dev-control-plane",
                Some("kind://docker/dev/dev-control-plane"),
            ),
            node("dev-worker", Some("kind://docker/dev/dev-worker")),
        ];
        assert_eq!(kind_cluster_of(&nodes, "whatever").as_deref(), Some("dev"));
        let podman = [node("x", Some("kind://podman/lab/lab-control-plane"))];
        assert_eq!(kind_cluster_of(&podman, "c").as_deref(), Some("lab"));
        let old = [node("e2e-control-plane", None)];
        assert_eq!(kind_cluster_of(&old, "kind-e2e").as_deref(), Some("e2e"));
        assert_eq!(kind_cluster_of(&old, "prod"), None);
        let cloud = [node("ip-10-0-0-1", Some("aws:///eu-west-1a/i-0abc"))];
        assert_eq!(kind_cluster_of(&cloud, "kind-x"), None);
        assert_eq!(kind_cluster_of(&[], "kind-x"), None);
    }
}
