//! The client's one error type: each error a complete, specific sentence naming the object,
//! the namespace or the call, and each means exit code 2 ("the tool could not do its job").

use crate::connect::ApiTarget;

/// Every way a run can fail before it has a verdict. The Kubernetes causes keep their
/// context as fields (which object, which namespace, which call) until they are printed.
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
    /// The access review found permissions the run needs that the user lacks (all named).
    #[error("{0}")]
    PermissionsMissing(String),
    /// HTTP 403 on one call.
    #[error("RBAC denied: cannot {call} (the server said: {message})")]
    RbacDenied { call: String, message: String },
    /// Any other API status or transport failure of one call.
    #[error("cannot {call}: {detail}")]
    Api { call: String, detail: String },
    /// `kind` is the API resource in kubectl's words: `pod`, `service`, `deployment`...
    #[error("{kind} \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
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
    #[error("pod \"{pod}\" in namespace \"{namespace}\" has no IP address yet (phase {phase})")]
    PodWithoutIp {
        namespace: String,
        pod: String,
        phase: String,
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
    #[error("{workload} in namespace \"{namespace}\" has no Ready, Running pod: {detail}")]
    NoReadyPod {
        workload: String,
        namespace: String,
        detail: String,
    },
    #[error("{workload} in namespace \"{namespace}\" has no usable pod selector: {detail}")]
    BadSelector {
        workload: String,
        namespace: String,
        detail: String,
    },
    #[error("invalid SOURCE `{input}`: {reason}")]
    InvalidSource { input: String, reason: String },
    #[error("invalid --to `{input}`: {reason}")]
    InvalidDestination { input: String, reason: String },
    #[error("service \"{service}\" in namespace \"{namespace}\" has no port {asked} (its ports: {available})")]
    PortNotFound {
        service: String,
        namespace: String,
        asked: String,
        available: String,
    },
    #[error("container \"{container}\" not found in pod \"{pod}\" (containers: {available})")]
    ContainerNotFound {
        pod: String,
        container: String,
        available: String,
    },
    /// Flags that do not make sense together or ask for what the probe cannot do.
    #[error("{0}")]
    InvalidInput(String),
    /// The user stopped the run (Ctrl-C) before it could say anything; what was cleaned up.
    #[error("{0}")]
    Interrupted(String),
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
    /// `kubectl netdebug image build|load`.
    #[error(transparent)]
    Image(#[from] crate::probe_image::ImageError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The one classifier of kube errors. `call` names what was attempted the way RBAC does
    /// (`get pods in namespace "shop"`, `patch pods/ephemeralcontainers`). Transport failures
    /// name the server and the context when `target` is known; 403 is an RBAC denial; other
    /// API statuses keep the server's own message (it names the object and the cause).
    pub fn from_kube(
        call: impl std::fmt::Display,
        err: kube::Error,
        target: Option<&ApiTarget>,
    ) -> Error {
        match (err, target) {
            (err @ (kube::Error::HyperError(_) | kube::Error::Service(_)), Some(target)) => {
                Error::Unreachable {
                    server: target.server.clone(),
                    context: target.context.clone(),
                    // kube's own wrapper ("ServiceError: ...") adds nothing for a reader.
                    detail: std::error::Error::source(&err)
                        .map(error_chain)
                        .unwrap_or_else(|| error_chain(&err)),
                }
            }
            (kube::Error::Api(status), _) if status.code == 403 => Error::RbacDenied {
                call: call.to_string(),
                message: status.message,
            },
            (kube::Error::Api(status), _) => Error::Api {
                call: call.to_string(),
                detail: format!("{} ({} {})", status.message, status.code, status.reason),
            },
            (other, _) => Error::Api {
                call: call.to_string(),
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
