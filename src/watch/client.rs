//! The API client, found the way kubectl finds its config, built without kube's hidden retry
//! layer (which retries 429/503/504 inside one call, so throttling was never seen or counted):
//! every attempt is one request of the watch loop, counted and paced by its own backoff. Every
//! request names stallwatch and its version in `User-Agent`, so the API server's audit log and
//! `apiserver_request_total` can find it.

use std::path::Path;

use kube::{Client, config::KubeConfigOptions};

use crate::error::{Error, Result};

/// Builds a client from `kubeconfig` (else `$KUBECONFIG`, `~/.kube/config` or the in-cluster
/// service account), with `context` if given.
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client> {
    let opts = KubeConfigOptions { context: context.map(str::to_string), ..Default::default() };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &opts).await
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&opts).await,
        None => Ok(kube::Config::infer().await.map_err(|e| Error::Kubeconfig(e.to_string()))?),
    }
    .map_err(|e| Error::Kubeconfig(e.to_string()))?;
    Ok(Client::try_from(prepare(config))?)
}

/// `stallwatch/<version>`.
pub const USER_AGENT: &str = concat!("stallwatch/", env!("CARGO_PKG_VERSION"));

/// No hidden retries; the User-Agent on every request.
pub fn prepare(mut config: kube::Config) -> kube::Config {
    config.default_retry = false;
    config.headers.retain(|(k, _)| k != http::header::USER_AGENT);
    config.headers.push((http::header::USER_AGENT, http::HeaderValue::from_static(USER_AGENT)));
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_retry_and_user_agent() {
        let c = prepare(kube::Config::new("https://127.0.0.1:6443".parse().unwrap()));
        assert!(!c.default_retry);
        let ua: Vec<_> = c.headers.iter().filter(|(k, _)| k == http::header::USER_AGENT).collect();
        assert_eq!(ua.len(), 1);
        assert!(ua[0].1.to_str().unwrap().starts_with("stallwatch/"));
    }
}
