//! Building a Kubernetes client from a kubeconfig file or the ambient configuration.

use std::path::{Path, PathBuf};

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// The longest one request to the hub API server may take (watches excepted: they are long
/// polls). kube's client has no read timeout of its own, so without this a hub connection that
/// hangs would hang the reconcile, the Lease renewal or the status patch behind it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors while building a Kubernetes client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read kubeconfig {path}")]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to load kubeconfig {path}")]
    LoadKubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to infer the Kubernetes configuration (in-cluster or $KUBECONFIG)")]
    Infer {
        #[source]
        source: kube::config::InferConfigError,
    },
    #[error("failed to build the Kubernetes client")]
    Build {
        #[source]
        source: kube::Error,
    },
}

/// A client for the cluster described by `kubeconfig`, or, without one, the in-cluster service
/// account or `$KUBECONFIG` (kube's usual inference).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client, Error> {
    let config = match kubeconfig {
        Some(path) => from_file(path).await?,
        None => kube::Config::infer()
            .await
            .map_err(|source| Error::Infer { source })?,
    };
    kube::Client::try_from(config).map_err(|source| Error::Build { source })
}

/// A client configuration from a kubeconfig file, using its current context.
pub async fn from_file(path: &Path) -> Result<kube::Config, Error> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::ReadKubeconfig {
        path: path.to_owned(),
        source,
    })?;
    from_kubeconfig(kubeconfig, path).await
}

async fn from_kubeconfig(kubeconfig: Kubeconfig, origin: &Path) -> Result<kube::Config, Error> {
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::LoadKubeconfig {
            path: origin.to_owned(),
            source,
        })
}
