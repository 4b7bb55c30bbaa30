//! Building a Kubernetes client the way kubectl would from the same flags: `--kubeconfig`
//! overrides `$KUBECONFIG` (which may list several files, merged first-wins), `--context`,
//! `--cluster`, `--user` pick from it, `-n` overrides the context's namespace, and with no
//! kubeconfig at all the in-cluster service account is used.

use crate::cli::KubeArgs;
use crate::error::{Error, Result};
use kube::config::{Config, KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Which API server and context a run talks to, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTarget {
    pub server: String,
    pub context: String,
}

/// A ready client plus what the user asked for.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The namespace of SOURCE: `-n`, else the context's, else `default`.
    pub namespace: String,
    pub target: ApiTarget,
}

/// Load the configuration (no network traffic yet).
pub async fn load_config(args: &KubeArgs) -> Result<(Config, ApiTarget)> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        cluster: args.cluster.clone(),
        user: args.user.clone(),
    };
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
            Error::Kubeconfig(format!("cannot use --kubeconfig {}: {e}", path.display()))
        })?),
        None => match Kubeconfig::read() {
            Ok(k) => Some(k),
            // No kubeconfig anywhere: inside a cluster, kubectl falls back to the service account.
            Err(KubeconfigError::FindPath) | Err(KubeconfigError::ReadConfig(..))
                if std::env::var_os("KUBECONFIG").is_none()
                    && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
            {
                None
            }
            Err(e) => return Err(Error::Kubeconfig(kubeconfig_error_message(e))),
        },
    };
    let (mut config, context) = match kubeconfig {
        Some(kubeconfig) => {
            let context = args
                .context
                .clone()
                .or_else(|| kubeconfig.current_context.clone())
                .unwrap_or_else(|| "(none)".into());
            let config = Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    Error::Kubeconfig(format!(
                        "cannot use kubeconfig context {context}: {}",
                        crate::error::error_chain(&e)
                    ))
                })?;
            (config, context)
        }
        None => {
            let config = Config::incluster().map_err(|e| {
                Error::Kubeconfig(format!(
                    "no kubeconfig found and the in-cluster configuration failed: {e}"
                ))
            })?;
            (config, "in-cluster".to_string())
        }
    };
    if let Some(ns) = &args.namespace {
        config.default_namespace = ns.clone();
    }
    if let Some(timeout) = args.request_timeout {
        // kubectl: 0 means no timeout.
        let t = (!timeout.is_zero()).then_some(timeout);
        config.read_timeout = t;
        config.write_timeout = t;
        config.connect_timeout = t;
    }
    let target = ApiTarget {
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
        context,
    };
    Ok((config, target))
}

/// Load the configuration and build the client.
pub async fn connect(args: &KubeArgs) -> Result<Cluster> {
    let (config, target) = load_config(args).await?;
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| {
        Error::Kubeconfig(format!(
            "cannot build a client for {} (context {}): {}",
            target.server,
            target.context,
            crate::error::error_chain(&e)
        ))
    })?;
    Ok(Cluster {
        client,
        namespace,
        target,
    })
}

fn kubeconfig_error_message(e: KubeconfigError) -> String {
    match e {
        KubeconfigError::FindPath => {
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config".into()
        }
        other => format!(
            "cannot read the kubeconfig: {}",
            crate::error::error_chain(&other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: alpha-cluster
  cluster: { server: "https://10.96.0.1:6443", insecure-skip-tls-verify: true }
contexts:
- name: alpha
  context: { cluster: alpha-cluster, user: alpha-user, namespace: shop }
users:
- name: alpha-user
  user: { token: "t1" }
"#;
    const SECOND: &str = r#"
apiVersion: v1
kind: Config
current-context: beta
clusters:
- name: beta-cluster
  cluster: { server: "https://127.0.0.1:7443", insecure-skip-tls-verify: true }
contexts:
- name: beta
  context: { cluster: beta-cluster, user: beta-user }
users:
- name: beta-user
  user: { token: "t2" }
"#;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// KUBECONFIG with two files merges like kubectl: the first file's current-context wins,
    /// and a context from the second file can be chosen with --context. Everything happens in
    /// one test because KUBECONFIG is process-wide.
    #[tokio::test]
    async fn kubeconfig_list_merges_like_kubectl() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a", FIRST);
        let b = write(dir.path(), "b", SECOND);
        let joined = std::env::join_paths([&a, &b]).unwrap();
        // The only test in this binary that touches KUBECONFIG.
        std::env::set_var("KUBECONFIG", &joined);

        let (config, target) = load_config(&KubeArgs::default()).await.unwrap();
        assert_eq!(target.context, "alpha");
        assert_eq!(target.server, "https://10.96.0.1:6443");
        assert_eq!(config.default_namespace, "shop");

        let args = KubeArgs {
            context: Some("beta".into()),
            ..Default::default()
        };
        let (config, target) = load_config(&args).await.unwrap();
        assert_eq!(target.context, "beta");
        assert_eq!(target.server, "https://127.0.0.1:7443");
        assert_eq!(config.default_namespace, "default");

        let args = KubeArgs {
            namespace: Some("other".into()),
            request_timeout: Some(std::time::Duration::from_secs(7)),
            ..Default::default()
        };
        let (config, _) = load_config(&args).await.unwrap();
        assert_eq!(config.default_namespace, "other");
        assert_eq!(config.read_timeout, Some(std::time::Duration::from_secs(7)));

        // --kubeconfig overrides KUBECONFIG.
        let args = KubeArgs {
            kubeconfig: Some(b.clone()),
            ..Default::default()
        };
        let (_, target) = load_config(&args).await.unwrap();
        assert_eq!(target.context, "beta");

        let args = KubeArgs {
            context: Some("gamma".into()),
            ..Default::default()
        };
        let err = load_config(&args).await.err().unwrap().to_string();
        assert!(err.contains("gamma"), "{err}");

        let args = KubeArgs {
            kubeconfig: Some(dir.path().join("missing")),
            ..Default::default()
        };
        let err = load_config(&args).await.err().unwrap().to_string();
        assert!(err.starts_with("cannot use --kubeconfig"), "{err}");
        std::env::remove_var("KUBECONFIG");
    }
}
