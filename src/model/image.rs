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
//! 6. A reference under a configured registry mirror (`registryMirrors`, [`Mirror`]) is read as
//!    the upstream reference it stands for, so an admission webhook that rewrites `docker.io/x`
//!    to `mirror.example/x` does not show a permanent mismatch. Digests are kept as they are: a
//!    mirror serves the same content.

use std::sync::Arc;

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

/// A registry (or a path prefix in one) that references are rewritten to, and the upstream
/// it stands for: `{from: docker.io, to: mirror.example/dockerhub}` reads
/// `mirror.example/dockerhub/library/nginx` as `docker.io/library/nginx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Normalised upstream prefix, e.g. `docker.io`.
    pub from: String,
    /// Normalised mirror prefix, e.g. `mirror.example/dockerhub`.
    pub to: String,
}

/// The configured mirrors, shared by every fact that compares images.
pub type Mirrors = Arc<[Mirror]>;

/// A registry prefix as written (`docker.io`, `mirror.example:5000/hub`), normalised: host
/// lowercased, Docker Hub's aliases folded, no trailing `/`. The error says what is wrong.
fn registry_prefix(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    if t.is_empty() {
        return Err("is empty; write a registry host such as docker.io".into());
    }
    if t.contains("://") {
        return Err(format!("{text:?} has a scheme; write the registry host alone, e.g. mirror.example"));
    }
    if t.chars().any(|c| c.is_whitespace() || c == '@') || t.split('/').any(str::is_empty) {
        return Err(format!(
            "{text:?} is not a registry host or path prefix such as mirror.example/dockerhub"
        ));
    }
    let (host, path) = t.split_once('/').map_or((t, None), |(h, p)| (h, Some(p)));
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(format!(
            "{text:?} does not start with a registry host (one with a `.` or a port, or localhost), e.g. docker.io"
        ));
    }
    if path.is_some_and(|p| p.contains(':')) {
        return Err(format!("{text:?} names a tag; a mirror maps registries and paths, not tags"));
    }
    let host = match host.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    };
    Ok(path.map_or(host.clone(), |p| format!("{host}/{p}")))
}

impl Mirror {
    /// A mirror from the two prefixes as the config writes them.
    pub fn new(from: &str, to: &str) -> Result<Mirror, String> {
        let from = registry_prefix(from).map_err(|e| format!("`from` {e}"))?;
        let to = registry_prefix(to).map_err(|e| format!("`to` {e}"))?;
        if from == to {
            return Err(format!("`from` and `to` are both {from:?}; a mirror maps one registry to another"));
        }
        Ok(Mirror { from, to })
    }

    /// What is left of `name` under this mirror's prefix, if it is under it.
    fn rest<'n>(&self, name: &'n str) -> Option<&'n str> {
        name.strip_prefix(&*self.to)?.strip_prefix('/')
    }
}

impl ImageRef {
    /// The reference as its upstream names it, when it is under one of `mirrors` (the longest
    /// matching prefix wins); unchanged otherwise.
    pub fn unmirrored(mut self, mirrors: &[Mirror]) -> ImageRef {
        let best =
            mirrors.iter().filter_map(|m| Some((m, m.rest(&self.name)?))).max_by_key(|(m, _)| m.to.len());
        if let Some((m, rest)) = best
            && let Some(up) = ImageRef::parse(&format!("{}/{rest}", m.from))
        {
            self.name = up.name;
        }
        self
    }
}

/// Compares two references as written; unparsable references compare as plain strings.
pub fn same(a: &str, b: &str) -> bool {
    same_via(&[], a, b)
}

/// [`same`], reading references under a mirror as their upstream.
pub fn same_via(mirrors: &[Mirror], a: &str, b: &str) -> bool {
    match (ImageRef::parse(a), ImageRef::parse(b)) {
        (Some(x), Some(y)) => x.unmirrored(mirrors).same(&y.unmirrored(mirrors)),
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
    runs_via(&[], template, spec, status_image, image_id)
}

/// [`runs`], reading references under a mirror as their upstream (an admission webhook that
/// rewrote the pod's image to the mirror still runs the template's image).
pub fn runs_via(
    mirrors: &[Mirror],
    template: &str,
    spec: &str,
    status_image: Option<&str>,
    image_id: Option<&str>,
) -> bool {
    let parse = |s: &str| ImageRef::parse(s).map(|r| r.unmirrored(mirrors));
    let Some(t) = parse(template) else { return template == spec };
    if let Some(want) = &t.digest {
        let digest_of = |s: &str| s.rsplit_once('@').map(|(_, d)| d.to_string());
        return [Some(spec), status_image, image_id]
            .into_iter()
            .flatten()
            .filter_map(digest_of)
            .any(|d| &d == want);
    }
    match parse(spec) {
        Some(s) => s.same(&t),
        // An unparsable spec: the status image, if it names the template's image, decides.
        None => status_image.and_then(parse).is_some_and(|st| st.same(&t)),
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

    fn mirrors(pairs: &[(&str, &str)]) -> Vec<Mirror> {
        pairs.iter().map(|(f, t)| Mirror::new(f, t).unwrap()).collect()
    }

    #[test]
    fn rule6_mirrors_read_as_their_upstream() {
        let m = mirrors(&[("docker.io", "Mirror.Example"), ("quay.io", "mirror.example/quay")]);
        // The webhook rewrote Docker Hub references to the mirror, library/ included.
        assert!(same_via(&m, "kubearmor/kubearmor:v1", "mirror.example/kubearmor/kubearmor:v1"));
        assert!(same_via(&m, "nginx:1.27", "mirror.example/nginx:1.27"));
        assert!(same_via(&m, "nginx:1.27", "mirror.example/library/nginx:1.27"));
        // The longer prefix wins: mirror.example/quay/… is quay.io, not docker.io/quay/….
        assert!(same_via(&m, "quay.io/org/app:v1", "mirror.example/quay/org/app:v1"));
        assert!(!same_via(&m, "docker.io/quay/org/app:v1", "mirror.example/quay/org/app:v1"));
        // A tag is still a tag, and only whole path segments match.
        assert!(!same_via(&m, "nginx:1.27", "mirror.example/nginx:1.28"));
        assert!(!same_via(
            &mirrors(&[("docker.io", "mirror.example/hub")]),
            "nginx:1",
            "mirror.example/hubx/nginx:1"
        ));
        // Without the option the rewrite is a mismatch, as before.
        assert!(!same("kubearmor/kubearmor:v1", "mirror.example/kubearmor/kubearmor:v1"));
        // A pod the webhook rewrote runs the template.
        assert!(runs_via(&m, "kubearmor/kubearmor:v1", "mirror.example/kubearmor/kubearmor:v1", None, None));
        assert!(!runs("kubearmor/kubearmor:v1", "mirror.example/kubearmor/kubearmor:v1", None, None));
        // Digests are compared as they are.
        let d = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        assert!(same_via(&m, &format!("nginx@{d}"), &format!("mirror.example/library/nginx@{d}")));
    }

    #[test]
    fn bad_mirrors_are_refused_with_the_fix() {
        for (from, to, says) in [
            ("", "mirror.example", "is empty"),
            ("docker.io", "https://mirror.example", "scheme"),
            ("docker.io", "mirror", "registry host"),
            ("docker.io", "mirror.example/hub:v1", "tag"),
            ("docker.io", "mirror.example//hub", "path prefix"),
            ("index.docker.io", "docker.io", "both"),
        ] {
            let e = Mirror::new(from, to).unwrap_err();
            assert!(e.contains(says), "{from:?} → {to:?}: {e}");
        }
        assert_eq!(
            Mirror::new("docker.io", "mirror.example:5000/hub/").unwrap().to,
            "mirror.example:5000/hub"
        );
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
