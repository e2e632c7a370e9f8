//! Image reference normalisation, so that `kubearmor/kubearmor:stable` and
//! `docker.io/kubearmor/kubearmor:stable` compare equal. The rules (docs/images.md):
//!
//! 1. No registry (the first path segment has no `.` or `:` and is not `localhost`) means
//!    `docker.io`; `index.docker.io` and `registry-1.docker.io` are `docker.io` too.
//! 2. A single-segment name on Docker Hub gets `library/` (`nginx` → `docker.io/library/nginx`).
//! 3. No tag and no digest means `:latest`.
//! 4. A reference with a digest is compared by digest alone (`name:tag@sha256:…` pins the digest;
//!    the tag is informational).
//! 5. Registry host and repository are compared case-sensitively except the host, which DNS
//!    makes case-insensitive.

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    pub name: String,
    pub tag: Option<String>,
    /// `sha256:…`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises a reference; `None` when it is not one.
    pub fn parse(reference: &str) -> Option<ImageRef> {
        let r = reference.trim();
        if r.is_empty() || r.chars().any(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match r.split_once('@') {
            Some((n, d)) if d.contains(':') => (n, Some(d.to_string())),
            Some(_) => return None,
            None => (r, None),
        };
        // A tag is after the last ':' that follows the last '/', so registry ports survive.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return None;
        }
        let (host, path) = match name.split_once('/') {
            Some((h, p)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_ascii_lowercase(), p)
            }
            _ => ("docker.io".to_string(), name),
        };
        let host = match host.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => host,
        };
        let path = if host == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Some(ImageRef { name: format!("{host}/{path}"), tag, digest })
    }

    /// Whether two references name the same image under the rules above.
    pub fn same(&self, other: &ImageRef) -> bool {
        if self.name != other.name {
            return false;
        }
        match (&self.digest, &other.digest) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.tag == other.tag,
            _ => false,
        }
    }
}

/// Compares two references as written; unparsable references compare as plain strings.
pub fn same(a: &str, b: &str) -> bool {
    match (ImageRef::parse(a), ImageRef::parse(b)) {
        (Some(x), Some(y)) => x.same(&y),
        _ => a.trim() == b.trim(),
    }
}

/// Whether a container runs the template's image. A template that pins a digest is compared by
/// digest with what the pod resolved (`imageID`, or a digest in the spec or status image); a
/// tag template is compared with the pod's spec image, what the kubelet was told to run. The
/// status `image` never vetoes a match: runtimes report another tag of the same image
/// (`:stable` runs as `:v1.7.4`), or the digest alone. A tag's digest is unknowable here, so a
/// tag template is never compared with `imageID`.
pub fn runs(template: &str, spec: &str, status_image: Option<&str>, image_id: Option<&str>) -> bool {
    let Some(t) = ImageRef::parse(template) else { return template == spec };
    if let Some(want) = &t.digest {
        let digest_of = |s: &str| s.rsplit_once('@').map(|(_, d)| d.to_string());
        return [Some(spec), status_image, image_id]
            .into_iter()
            .flatten()
            .filter_map(digest_of)
            .any(|d| &d == want);
    }
    match ImageRef::parse(spec) {
        Some(s) => s.same(&t),
        // An unparsable spec: the status image, if it names the template's image, decides.
        None => status_image.and_then(ImageRef::parse).is_some_and(|st| st.same(&t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        let r = ImageRef::parse(s).unwrap();
        format!(
            "{}{}{}",
            r.name,
            r.tag.map(|t| format!(":{t}")).unwrap_or_default(),
            r.digest.map(|d| format!("@{d}")).unwrap_or_default()
        )
    }

    #[test]
    fn rule1_default_registry() {
        assert_eq!(n("kubearmor/kubearmor:stable"), "docker.io/kubearmor/kubearmor:stable");
        assert_eq!(n("index.docker.io/kubearmor/kubearmor:v1"), "docker.io/kubearmor/kubearmor:v1");
        assert_eq!(n("quay.io/org/app:v1"), "quay.io/org/app:v1");
        assert_eq!(n("localhost/app:v1"), "localhost/app:v1");
        assert_eq!(n("registry.local:5000/app:v1"), "registry.local:5000/app:v1");
        assert_eq!(n("GHCR.IO/org/app:v1"), "ghcr.io/org/app:v1");
    }

    #[test]
    fn rule2_library() {
        assert_eq!(n("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(n("docker.io/nginx"), "docker.io/library/nginx:latest");
    }

    #[test]
    fn rule3_latest() {
        assert_eq!(n("example/agent"), "docker.io/example/agent:latest");
        assert_eq!(n("registry.local:5000/app"), "registry.local:5000/app:latest");
        assert!(same("nginx", "docker.io/library/nginx:latest"));
    }

    #[test]
    fn rule4_digests() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(same(&format!("nginx@{d}"), &format!("docker.io/library/nginx:1.27@{d}")));
        assert!(!same(&format!("nginx@{d}"), "nginx:1.27"));
        assert!(!same("nginx:1.27", "nginx:1.28"));
        assert_eq!(n(&format!("nginx@{d}")), format!("docker.io/library/nginx@{d}"));
    }

    #[test]
    fn malformed_references() {
        for bad in ["", " ", "a b", "nginx:", "nginx@nodigest", ":tag"] {
            assert!(ImageRef::parse(bad).is_none(), "{bad:?}");
        }
        assert!(same("weird ref", "weird ref"));
    }

    #[test]
    fn running_images() {
        let d = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        // Tag template: spec and status tag agree; the imageID digest is not needed.
        assert!(runs(
            "kubearmor/kubearmor:v2",
            "docker.io/kubearmor/kubearmor:v2",
            Some("docker.io/kubearmor/kubearmor:v2"),
            Some(&format!("docker.io/kubearmor/kubearmor@{d}"))
        ));
        assert!(!runs("kubearmor/kubearmor:v2", "kubearmor/kubearmor:v1", None, None));
        // The runtime reports a digest-only image: the spec decides.
        assert!(runs("nginx:1", "nginx:1", Some(&format!("docker.io/library/nginx@{d}")), None));
        // Digest template: only a matching running digest counts.
        assert!(runs(&format!("nginx@{d}"), "nginx:1", None, Some(&format!("docker.io/library/nginx@{d}"))));
        assert!(!runs(&format!("nginx@{d}"), "nginx:1", Some("nginx:1"), None));
        // Both sides resolve to digests: the digest decides, tags are informational.
        assert!(runs(
            &format!("kubearmor/kubearmor:stable@{d}"),
            "kubearmor/kubearmor:stable",
            Some("docker.io/kubearmor/kubearmor:v1.7.4"),
            Some(&format!("docker.io/kubearmor/kubearmor@{d}"))
        ));
    }

    #[test]
    fn a_tag_alias_never_vetoes_a_match() {
        // The runtime reports another tag of the same image: the pod runs the template.
        assert!(runs(
            "kubearmor/kubearmor:stable",
            "kubearmor/kubearmor:stable",
            Some("docker.io/kubearmor/kubearmor:v1.7.4"),
            None
        ));
        // The pod was told another image: outdated whatever the status says.
        assert!(!runs(
            "kubearmor/kubearmor:stable",
            "kubearmor/kubearmor:v1.7.3",
            Some("docker.io/kubearmor/kubearmor:stable"),
            None
        ));
    }
}
