//! The client's errors: each one a complete, specific sentence, and each means exit code 2
//! ("the tool could not do its job").

use crate::connect::ApiTarget;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kubeconfig(String),
    #[error("cannot reach the API server at {server} (context {context}): {detail}")]
    Unreachable {
        server: String,
        context: String,
        detail: String,
    },
    #[error(
        "the API server runs Kubernetes {version}; ephemeral containers need 1.23 or newer \
         (on older clusters run the probe image as a pod, or use `kubectl-netdebug local` on the node)"
    )]
    ServerTooOld { version: String },
    #[error("{0}")]
    RbacDenied(String),
    #[error("namespace \"{0}\" not found")]
    NamespaceNotFound(String),
    #[error("pod \"{pod}\" in namespace \"{namespace}\" is not running (phase {phase}{reason})")]
    PodNotRunning {
        namespace: String,
        pod: String,
        phase: String,
        /// Already formatted as `, reason X: message`, or empty.
        reason: String,
    },
    #[error(
        "pod \"{pod}\" in namespace \"{namespace}\" runs on {os} node {node}; the probe needs \
         a Linux node (ephemeral containers share the pod's Linux network namespace)"
    )]
    NotLinuxNode {
        namespace: String,
        pod: String,
        node: String,
        os: String,
    },
    #[error("{0}")]
    Resolve(String),
    #[error("injecting the probe into pod {namespace}/{pod} failed: {detail}")]
    Inject {
        namespace: String,
        pod: String,
        detail: String,
    },
    #[error(
        "probe container {container} in pod {namespace}/{pod} cannot start: {reason}: {message}"
    )]
    ContainerFailed {
        namespace: String,
        pod: String,
        container: String,
        reason: String,
        message: String,
    },
    #[error("{0}")]
    Deadline(String),
    #[error("{0}")]
    Stream(String),
    #[error("{0}")]
    Local(String),
    #[error("{0}")]
    Output(String),
    #[error("kubernetes API call `{what}` failed: {detail}")]
    Api { what: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classify a kube error from the call `what`: transport failures name the server and the
    /// context; API statuses keep the server's own message (it names the object and the cause).
    pub fn from_kube(what: impl Into<String>, err: kube::Error, target: &ApiTarget) -> Error {
        match err {
            kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable {
                server: target.server.clone(),
                context: target.context.clone(),
                // kube's own wrapper ("ServiceError: ...") adds nothing for a reader.
                detail: std::error::Error::source(&err)
                    .map(error_chain)
                    .unwrap_or_else(|| error_chain(&err)),
            },
            kube::Error::Api(status) => Error::Api {
                what: what.into(),
                detail: format!("{} ({} {})", status.message, status.code, status.reason),
            },
            other => Error::Api {
                what: what.into(),
                detail: error_chain(&other),
            },
        }
    }
}

/// `outer: inner: innermost`, skipping repeats (hyper/tower errors often repeat their source).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The HTTP status of a kube API error, if it is one.
pub fn api_status(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
