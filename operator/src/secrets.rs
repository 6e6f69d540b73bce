//! Reading Secrets from the hub without ever repeating what is in them.
//!
//! Nothing read from a Secret (kubeconfig, token, TSIG key, external id) may reach a status, an
//! Event, a log line or a metric — not even inside a parser's error snippet (a YAML parser
//! quotes the line it fails on, a base64 decoder the byte). So the errors here, and those of the
//! parsers of Secret content, name the Secret, the key and at most a position: never content,
//! and never a source error that might carry some.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

/// One key of a Secret in the hub.
#[derive(Debug, Clone, Copy)]
pub struct SecretKey<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub key: &'a str,
}

impl std::fmt::Display for SecretKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Secret {}/{} key {:?}",
            self.namespace, self.name, self.key
        )
    }
}

/// Why a Secret's key could not be read: (condition reason, message), never its content.
pub type Problem = (&'static str, String);

/// The bytes of `key`. Reasons: `<prefix>SecretNotFound`, `<prefix>SecretUnreadable`,
/// `<prefix>KeyMissing`; `prefix` names what the Secret is for (`Kubeconfig`, `Tsig`).
pub async fn read(
    hub: &kube::Client,
    at: SecretKey<'_>,
    reasons: &Reasons,
) -> Result<Vec<u8>, Problem> {
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), at.namespace);
    let call = tokio::time::timeout(crate::kube_client::CALL_TIMEOUT, secrets.get_opt(at.name));
    let secret = match call.await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => {
            return Err((
                reasons.not_found,
                format!("Secret {}/{} does not exist", at.namespace, at.name),
            ));
        }
        // The API server's error says who may not read what; it holds nothing of the Secret.
        Ok(Err(e)) => {
            return Err((
                reasons.unreadable,
                format!("cannot read Secret {}/{}: {e}", at.namespace, at.name),
            ));
        }
        Err(_) => {
            return Err((
                reasons.unreadable,
                format!(
                    "cannot read Secret {}/{}: the hub did not answer within {:?}",
                    at.namespace,
                    at.name,
                    crate::kube_client::CALL_TIMEOUT
                ),
            ));
        }
    };
    secret
        .data
        .and_then(|mut d| d.remove(at.key))
        .map(|b| b.0)
        .ok_or_else(|| {
            (
                reasons.key_missing,
                format!(
                    "Secret {}/{} has no key {:?}",
                    at.namespace, at.name, at.key
                ),
            )
        })
}

/// The condition reasons of one kind of Secret.
#[derive(Debug, Clone, Copy)]
pub struct Reasons {
    pub not_found: &'static str,
    pub unreadable: &'static str,
    pub key_missing: &'static str,
}

pub const KUBECONFIG: Reasons = Reasons {
    not_found: "KubeconfigSecretNotFound",
    unreadable: "KubeconfigSecretUnreadable",
    key_missing: "KubeconfigKeyMissing",
};

pub const TSIG: Reasons = Reasons {
    not_found: "TsigSecretNotFound",
    unreadable: "TsigSecretUnreadable",
    key_missing: "TsigSecretKeyMissing",
};

pub const EXTERNAL_ID: Reasons = Reasons {
    not_found: "ExternalIdSecretNotFound",
    unreadable: "ExternalIdSecretUnreadable",
    key_missing: "ExternalIdKeyMissing",
};

/// Where in a YAML document a parser failed, as `line L, column C` (nothing of the text).
pub fn yaml_position(error: &serde_saphyr::Error) -> String {
    error.location().map_or_else(
        || "position unknown".to_owned(),
        |l| format!("line {}, column {}", l.line(), l.column()),
    )
}
