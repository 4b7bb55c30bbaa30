//! The few API reads resolution makes, each failing with the call named (verb, resource,
//! namespace) and a 404 told apart into "object not found" and "namespace not found".

use std::fmt::Debug;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams};
use kube::Resource;
use serde::de::DeserializeOwned;

use super::error::{is_not_found, Call};
use crate::error::Error;

/// GET a namespaced object. On 404, a GET of the namespace tells whether the namespace or
/// the object is missing (kubectl says only the latter; the former is the usual typo).
pub async fn get<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    resource: &'static str,
    kind: &'static str,
) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get(name).await {
        Ok(obj) => Ok(obj),
        Err(e) if is_not_found(&e) => Err(not_found(client, namespace, name, kind).await),
        Err(e) => Err(Call::get(resource, Some(namespace), name).error(e)),
    }
}

async fn not_found(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    kind: &'static str,
) -> Error {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get(namespace).await {
        Err(e) if is_not_found(&e) => Error::NamespaceNotFound(namespace.to_string()),
        // Present, or not ours to read: the object itself is what is missing.
        _ => Error::NotFound {
            kind,
            name: name.to_string(),
            namespace: namespace.to_string(),
        },
    }
}

/// LIST namespaced objects, optionally by label selector.
pub async fn list<K>(
    client: &kube::Client,
    namespace: &str,
    label_selector: Option<&str>,
    resource: &'static str,
) -> Result<Vec<K>, Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut params = ListParams::default();
    if let Some(sel) = label_selector.filter(|s| !s.is_empty()) {
        params = params.labels(sel);
    }
    api.list(&params)
        .await
        .map(|l| l.items)
        .map_err(|e| Call::list(resource, namespace).error(e))
}

/// A namespace's labels, or `Err` with the kube error (callers decide whether a 403 matters).
pub async fn namespace_labels(
    client: &kube::Client,
    namespace: &str,
) -> Result<super::labels::Labels, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get(namespace).await?;
    Ok(ns.metadata.labels.unwrap_or_default())
}

/// GET a namespaced object when it is only supplementary: any failure is None.
pub async fn get_quiet<K>(client: &kube::Client, namespace: &str, name: &str) -> Option<K>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.ok().flatten()
}
