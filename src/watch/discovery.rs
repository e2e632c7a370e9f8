//! Discovery: the plural and scope of a kind come from the API server (never guessed), and
//! become the collection URL every list and watch of the watch uses.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::{Client, core::discovery::ApiResource};

use super::{failure::Failure, request};
use crate::store::{ErrorCause, Watch};

/// Discovery answers at once; longer means a hung connection.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Resolves plural and scope through discovery (never guessed) into the collection URL: one
/// `GET` of the kind's group version (`/api/v1` or `/apis/GROUP/VERSION`), sent like every
/// other request of the loop (no hidden retry) so it can be counted. Returns the HTTP status
/// of that request (0: no response) with the outcome.
pub(super) async fn discover(client: &Client, watch: &Watch) -> (u16, Result<String, Failure>) {
    let g = &watch.key.gvk;
    let path = group_version_path(&g.group, &g.version);
    let req = match http::Request::get(&path).body(vec![]) {
        Ok(r) => r,
        Err(e) => return (0, Err(Failure::other(&format!("building discovery request: {e}")))),
    };
    let res = match request::send(client, req, DISCOVERY_TIMEOUT).await {
        Ok(r) => r,
        Err(mut f) => {
            if f.cause == ErrorCause::NotFound {
                f.message = format!(
                    "{} is not served by the API server (CRD not installed?): {}",
                    g.label(),
                    f.message
                );
            }
            return (f.code, Err(f));
        }
    };
    let body = match request::body(res, DISCOVERY_TIMEOUT).await {
        Ok(b) => b,
        Err(f) => return (200, Err(f)),
    };
    let list: APIResourceList = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            let f = Failure {
                cause: ErrorCause::Decode,
                code: 200,
                message: format!("decoding discovery of {path}: {e}"),
                retry_after: None,
            };
            return (200, Err(f));
        }
    };
    (200, resolve(&list, watch))
}

/// `/api/VERSION` for the core group, `/apis/GROUP/VERSION` otherwise.
fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") }
}

/// The collection URL of the watch's kind in a group version's resource list (a resource, not
/// a subresource such as `pods/status`).
fn resolve(list: &APIResourceList, watch: &Watch) -> Result<String, Failure> {
    let g = &watch.key.gvk;
    let Some(r) = list.resources.iter().find(|r| r.kind == g.kind && !r.name.contains('/')) else {
        return Err(Failure {
            cause: ErrorCause::NotFound,
            code: 404,
            message: format!("{} is not served by the API server (CRD not installed?)", g.label()),
            retry_after: None,
        });
    };
    let ar = ApiResource {
        group: g.group.clone(),
        version: g.version.clone(),
        api_version: if g.group.is_empty() {
            g.version.clone()
        } else {
            format!("{}/{}", g.group, g.version)
        },
        kind: g.kind.clone(),
        plural: r.name.clone(),
    };
    let ns = match (r.namespaced, watch.key.namespace.is_empty()) {
        (true, false) => Some(watch.key.namespace.as_str()),
        (false, false) => {
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

    fn watch(group: &str, kind: &str, ns: &str) -> Watch {
        let key = crate::store::WatchKey {
            gvk: crate::model::Gvk::new(group, "v1", kind),
            kind: None,
            namespace: ns.into(),
            label_selector: String::new(),
            field_selector: String::new(),
            shard: None,
        };
        Watch::new(key, crate::store::Subscribers::default())
    }

    fn resources(json: &str) -> APIResourceList {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn resolves_plural_and_scope_and_skips_subresources() {
        let core = resources(
            r#"{"groupVersion":"v1","resources":[
              {"name":"pods/status","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]},
              {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["list","watch"]},
              {"name":"nodes","singularName":"node","namespaced":false,"kind":"Node","verbs":["list"]}]}"#,
        );
        assert_eq!(resolve(&core, &watch("", "Pod", "a")).unwrap(), "/api/v1/namespaces/a/pods");
        assert_eq!(resolve(&core, &watch("", "Pod", "")).unwrap(), "/api/v1/pods");
        // A cluster-scoped kind ignores the namespace.
        assert_eq!(resolve(&core, &watch("", "Node", "a")).unwrap(), "/api/v1/nodes");
        let f = resolve(&core, &watch("", "Gadget", "")).unwrap_err();
        assert_eq!((f.cause, f.code), (ErrorCause::NotFound, 404));
        assert!(f.message.contains("not served"), "{}", f.message);
        assert_eq!(group_version_path("", "v1"), "/api/v1");
        assert_eq!(group_version_path("apps", "v1"), "/apis/apps/v1");
    }
}
