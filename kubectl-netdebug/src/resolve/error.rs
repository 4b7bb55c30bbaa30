//! Resolution errors: each a complete one-line sentence naming the object, the namespace and
//! what to do about it. API failures keep the verb and resource of the call that failed.

use crate::error::error_chain;

/// Why SOURCE or DEST could not be turned into something to probe.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid SOURCE `{input}`: {reason}")]
    InvalidSource { input: String, reason: String },
    #[error("invalid --to `{input}`: {reason}")]
    InvalidDestination { input: String, reason: String },
    /// `kind` is the API resource in kubectl's words: `pod`, `service`, `deployment`...
    #[error("{kind} \"{name}\" not found in namespace \"{namespace}\"")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    #[error("namespace \"{0}\" not found")]
    NamespaceNotFound(String),
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
    /// HTTP 403 from the API server.
    #[error("RBAC denied: cannot {verb} {resource} {scope} (the server said: {message})")]
    RbacDenied {
        verb: &'static str,
        resource: &'static str,
        /// `in namespace "shop"` or `"shop"` (cluster-scoped objects).
        scope: String,
        message: String,
    },
    /// Any other API or transport failure, with the call that failed.
    #[error("cannot {verb} {resource} {scope}: {detail}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        scope: String,
        detail: String,
    },
}

/// One API call, named the way RBAC names it, so a failure says exactly what was attempted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub verb: &'static str,
    /// Plural resource, with its API group when not core: `endpointslices.discovery.k8s.io`.
    pub resource: &'static str,
    /// None for cluster-scoped resources.
    pub namespace: Option<&'a str>,
    /// The object's name, for get.
    pub name: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn get(resource: &'static str, namespace: Option<&'a str>, name: &'a str) -> Self {
        Call {
            verb: "get",
            resource,
            namespace,
            name: Some(name),
        }
    }

    pub fn list(resource: &'static str, namespace: &'a str) -> Self {
        Call {
            verb: "list",
            resource,
            namespace: Some(namespace),
            name: None,
        }
    }

    fn scope(&self) -> String {
        match (self.namespace, self.name) {
            (Some(ns), _) => format!("in namespace \"{ns}\""),
            (None, Some(name)) => format!("\"{name}\""),
            (None, None) => "at cluster scope".to_string(),
        }
    }

    /// Classify a kube error of this call. 404 is not handled here: what "not found" means
    /// depends on the caller (the object or its namespace), see `not_found_or`.
    pub fn error(&self, err: kube::Error) -> ResolveError {
        match err {
            kube::Error::Api(status) if status.code == 403 => ResolveError::RbacDenied {
                verb: self.verb,
                resource: self.resource,
                scope: self.scope(),
                message: status.message.clone(),
            },
            kube::Error::Api(status) => ResolveError::Api {
                verb: self.verb,
                resource: self.resource,
                scope: self.scope(),
                detail: format!("{} ({} {})", status.message, status.code, status.reason),
            },
            other => ResolveError::Api {
                verb: self.verb,
                resource: self.resource,
                scope: self.scope(),
                detail: error_chain(&other),
            },
        }
    }
}

/// Whether a kube error is an HTTP 404.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}
