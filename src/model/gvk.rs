//! Group/version/kind of a watched resource, as the config names it.

use serde::Deserialize;

/// Group, version and kind of a watched resource; the plural and scope come from discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gvk {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// A Gvk from its three parts.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Gvk { group: group.into(), version: version.into(), kind: kind.into() }
    }

    /// `group/version/Kind`, or `version/Kind` for the core group: the `resource` label value.
    pub fn label(&self) -> String {
        if self.group.is_empty() {
            format!("{}/{}", self.version, self.kind)
        } else {
            format!("{}/{}/{}", self.group, self.version, self.kind)
        }
    }
}
