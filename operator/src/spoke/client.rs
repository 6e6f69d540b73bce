//! A client for a spoke's API server, from the kubeconfig in its SpokeCluster's Secret.
//!
//! The kubeconfig holds the spoke's credentials: no error here repeats any of it (see
//! [`crate::secrets`]). A kubeconfig that does not parse is reported by the Secret's name, the
//! key and the position of the error only.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::api::SpokeCluster;
use crate::secrets::{self, SecretKey};

/// Connect and read timeouts of spoke clients (every call to a spoke is short: the watches are
/// reconnected by their own loop).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The read timeout of watch clients: above [`WATCH_SECONDS`], so an idle watch is ended by the
/// server (and resumed at once, without a relist) instead of timing out here. With the 5 s of
/// [`TIMEOUT`], every idle Service/EndpointSlice/Node watch failed after 5 s and listed again.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the spoke's API server holds one watch request open (`timeoutSeconds`); a spoke
/// that stops answering is noticed within [`WATCH_READ_TIMEOUT`].
pub const WATCH_SECONDS: u32 = 50;

/// A client for the spoke's API server from its kubeconfig Secret, with short timeouts, and
/// the server's address for messages. Errors are (condition reason, message), without secrets.
pub async fn connect(
    spoke: &SpokeCluster,
    hub: &kube::Client,
) -> Result<(kube::Client, String), (&'static str, String)> {
    connect_with(spoke, hub, TIMEOUT).await
}

/// [`connect`] for watches: their requests wait for events, up to [`WATCH_SECONDS`]; use
/// `watcher::Config::timeout(WATCH_SECONDS)` with it.
pub async fn connect_for_watches(
    spoke: &SpokeCluster,
    hub: &kube::Client,
) -> Result<(kube::Client, String), (&'static str, String)> {
    connect_with(spoke, hub, WATCH_READ_TIMEOUT).await
}

async fn connect_with(
    spoke: &SpokeCluster,
    hub: &kube::Client,
    read_timeout: Duration,
) -> Result<(kube::Client, String), (&'static str, String)> {
    let r = &spoke.spec.kubeconfig_secret_ref;
    let at = SecretKey {
        namespace: &r.namespace,
        name: &r.name,
        key: &r.key,
    };
    let bytes = secrets::read(hub, at, &secrets::KUBECONFIG).await?;
    let mut config = config_from(&bytes, at).await?;
    let server = config.cluster_url.to_string();
    config.connect_timeout = Some(TIMEOUT);
    config.read_timeout = Some(read_timeout);
    let client = kube::Client::try_from(config).map_err(|_| {
        (
            INVALID,
            format!("{at}: no client can be built from this kubeconfig"),
        )
    })?;
    Ok((client, server))
}

const INVALID: &str = "KubeconfigInvalid";

/// The client configuration in a kubeconfig held by a Secret.
pub async fn config_from(
    bytes: &[u8],
    at: SecretKey<'_>,
) -> Result<kube::Config, (&'static str, String)> {
    let invalid = |what: String| (INVALID, format!("{at} is not a usable kubeconfig: {what}"));
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "not UTF-8 text (at byte {})",
            e.valid_up_to().saturating_add(1)
        ))
    })?;
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| {
        invalid(match &e {
            KubeconfigError::Parse(parse) => {
                format!("not valid YAML at {}", secrets::yaml_position(parse))
            }
            other => describe(other).to_owned(),
        })
    })?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid(describe(&e).to_owned()))
}

/// What went wrong with a kubeconfig, in words of our own: kube's messages include the
/// underlying error (a base64 decoder's, a PEM parser's), which may quote the key material.
fn describe(error: &KubeconfigError) -> &'static str {
    match error {
        KubeconfigError::CurrentContextNotSet => "no current-context is set",
        KubeconfigError::LoadContext(_) => "the current context does not exist",
        KubeconfigError::LoadClusterOfContext(_) => "the context's cluster does not exist",
        KubeconfigError::MissingClusterUrl => "the cluster has no server URL",
        KubeconfigError::ParseClusterUrl(_) => "the cluster's server URL does not parse",
        KubeconfigError::LoadCertificateAuthority(_) => {
            "the certificate authority data cannot be loaded"
        }
        KubeconfigError::LoadClientCertificate(_) => "the client certificate cannot be loaded",
        KubeconfigError::LoadClientKey(_) => "the client key cannot be loaded",
        KubeconfigError::ParseCertificates(_) => "a certificate is not valid PEM",
        KubeconfigError::Parse(_) => "not valid YAML",
        _ => "it cannot be loaded",
    }
}
