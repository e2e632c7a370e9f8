//! Discovery: the plural and scope of a kind come from the API server (never guessed), and
//! become the collection URL every list and watch of the watch uses.

use kube::{
    Client,
    core::discovery::{ApiResource, Scope},
};

use super::failure::Failure;
use crate::store::{ErrorCause, Watch};

/// Resolves plural and scope through discovery (never guessed) into the collection URL.
pub(super) async fn discover(client: &Client, watch: &Watch) -> Result<String, Failure> {
    let g = &watch.key.gvk;
    let gvk = kube::core::GroupVersionKind::gvk(&g.group, &g.version, &g.kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| {
        let mut f = Failure::from_kube(&e);
        if f.cause == ErrorCause::NotFound {
            f.message = format!("{} is not served by the API server (CRD not installed?): {e}", g.label());
        }
        f
    })?;
    let ns = match caps.scope {
        Scope::Namespaced if !watch.key.namespace.is_empty() => Some(watch.key.namespace.as_str()),
        Scope::Cluster if !watch.key.namespace.is_empty() => {
            tracing::warn!(resource = %g.label(), "kind is cluster-scoped; ignoring the configured namespace");
            None
        }
        _ => None,
    };
    Ok(collection_url(&ar, ns))
}

/// `/api/v1/...` or `/apis/GROUP/VERSION/...`, namespaced when `namespace` is given.
pub fn collection_url(ar: &ApiResource, namespace: Option<&str>) -> String {
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ar = |g: &str, p: &str| ApiResource {
            group: g.into(),
            version: "v1".into(),
            api_version: if g.is_empty() { "v1".into() } else { format!("{g}/v1") },
            kind: "K".into(),
            plural: p.into(),
        };
        assert_eq!(collection_url(&ar("", "pods"), Some("a")), "/api/v1/namespaces/a/pods");
        assert_eq!(collection_url(&ar("apps", "daemonsets"), None), "/apis/apps/v1/daemonsets");
        assert_eq!(
            collection_url(&ar("operator.kubearmor.com", "kubearmorconfigs"), Some("kubearmor")),
            "/apis/operator.kubearmor.com/v1/namespaces/kubearmor/kubearmorconfigs"
        );
    }
}
