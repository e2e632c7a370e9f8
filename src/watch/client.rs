//! The API client, found the way kubectl finds its config.

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
    Ok(Client::try_from(config)?)
}
