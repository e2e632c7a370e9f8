//! What the binary was built from: the crate version and the git revision (set by build.rs
//! from STALLWATCH_GIT_REVISION or `git rev-parse`, `unknown` without either).

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from, `unknown` when it could not be told.
pub const REVISION: &str = env!("STALLWATCH_GIT_REVISION");
/// `VERSION (revision REVISION)`, as `--version` prints it.
pub const LONG_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("STALLWATCH_GIT_REVISION"), ")");
