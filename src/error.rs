//! Typed errors of the library. The binary wraps them with anyhow for its exit message.

use thiserror::Error;

/// A config file that cannot be used, located in the file where possible.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Position is 1-based; 0 when the problem concerns the file as a whole.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid { file: String, line: u64, column: u64, message: String },
}

/// Every failure the library reports to the binary.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// No usable cluster access; the text is the client library's reason.
    #[error(
        "no usable cluster access: {0}; pass --kubeconfig FILE (and --context NAME), set KUBECONFIG, or run in a pod with a service account"
    )]
    Kubeconfig(String),
    /// A `--listen` value that is not an address.
    #[error("{0}")]
    Listen(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
