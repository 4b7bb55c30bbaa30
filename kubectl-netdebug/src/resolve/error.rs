//! The API calls resolution makes, named the way RBAC names them, so a failure (an
//! [`Error`] from the one classifier, [`Error::from_kube`]) says exactly what was attempted.

use crate::error::Error;

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
    pub fn error(&self, err: kube::Error) -> Error {
        Error::from_kube(self, err, None)
    }
}

impl std::fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.verb, self.resource, self.scope())
    }
}

/// Whether a kube error is an HTTP 404.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}
