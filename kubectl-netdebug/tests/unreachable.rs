//! An API server that cannot be reached: the error names the server URL and the context.
//! Traffic: one TCP connection attempt to 127.0.0.1 port 1 (nothing listens there).

use kubectl_netdebug::cli::KubeArgs;
use kubectl_netdebug::connect::connect;
use kubectl_netdebug::error::Error;
use kubectl_netdebug::preflight::check_server_version;

const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: lab
clusters:
- name: lab-cluster
  cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true }
contexts:
- name: lab
  context: { cluster: lab-cluster, user: lab-user }
users:
- name: lab-user
  user: { token: "t" }
"#;

#[tokio::test]
async fn unreachable_server_is_named_with_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, KUBECONFIG).unwrap();
    let args = KubeArgs {
        kubeconfig: Some(path),
        request_timeout: Some(std::time::Duration::from_secs(5)),
        ..Default::default()
    };
    let cluster = connect(&args).await.unwrap();
    assert_eq!(cluster.namespace, "default");
    let err = check_server_version(&cluster.client, &cluster.target)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot reach the API server at https://127.0.0.1:1 (context lab): "),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}
