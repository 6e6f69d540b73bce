//! A spoke's AWS access: the [`Target`] its `spec.aws` and `spec.region` name (the external id
//! read from its Secret), and the check that the hub can act there.
//!
//! The check asks STS whom the spoke's credentials act as (GetCallerIdentity, through the
//! assumed role when there is one) and compares the account with `spec.aws.accountId`: a role
//! that cannot be assumed, or credentials that act in another account, are found when the
//! SpokeCluster is applied, not when the first load balancer is due.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::api::SpokeCluster;
use crate::aws::accounts::{Accounts, ExternalId, Identity, Role, Target};
use crate::secrets::{self, SecretKey};

/// Condition reasons of `AWSReady`.
pub mod reasons {
    /// The role was assumed and acts in `spec.aws.accountId`.
    pub const ROLE_ASSUMED: &str = "RoleAssumed";
    /// No role: the hub's own credentials act in `spec.aws.accountId`.
    pub const HUB_CREDENTIALS: &str = "HubCredentials";
    /// The credentials act in another account than `spec.aws.accountId`.
    pub const ACCOUNT_MISMATCH: &str = "AccountMismatch";
    /// STS refused (the role cannot be assumed, say) or did not answer.
    pub const ACCESS_FAILED: &str = "AccessFailed";
    /// The external id in its Secret is not one STS would accept.
    pub const EXTERNAL_ID_INVALID: &str = "ExternalIdInvalid";
}

/// The AWS target of a spoke (`None` without `spec.aws`), reading the external id from its
/// Secret. Errors are (condition reason, message) naming the Secret, never its content.
pub async fn target(
    spoke: &SpokeCluster,
    hub: &kube::Client,
) -> Result<Option<Target>, secrets::Problem> {
    let Some(aws) = &spoke.spec.aws else {
        return Ok(None);
    };
    let role = match &aws.role_arn {
        None => None,
        Some(arn) => {
            let external_id = match &aws.external_id_secret_ref {
                None => None,
                Some(r) => {
                    let at = SecretKey {
                        namespace: &r.namespace,
                        name: &r.name,
                        key: &r.key,
                    };
                    let bytes = secrets::read(hub, at, &secrets::EXTERNAL_ID).await?;
                    Some(external_id(&bytes, at)?)
                }
            };
            Some(Role {
                arn: arn.clone(),
                external_id,
            })
        }
    };
    Ok(Some(Target {
        account: aws.account_id.clone(),
        region: spoke.spec.region.clone(),
        role,
    }))
}

/// The external id in a Secret's bytes, surrounding whitespace removed (a trailing newline from
/// `echo` is common); errors say where, never what.
fn external_id(bytes: &[u8], at: SecretKey<'_>) -> Result<ExternalId, secrets::Problem> {
    let invalid = |what: String| {
        (
            reasons::EXTERNAL_ID_INVALID,
            format!("{at} is not a valid external id: {what}"),
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "not UTF-8 text (at byte {})",
            e.valid_up_to().saturating_add(1)
        ))
    })?;
    ExternalId::parse(text.trim()).map_err(|at| {
        invalid(if at == 0 {
            "STS takes 2 to 1224 characters".to_owned()
        } else {
            format!("character {at} is not one of A-Z a-z 0-9 _+=,.@:/-")
        })
    })
}

/// The outcome of a check: `AWSReady`'s status, reason and message, and the identity when AWS
/// answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
    pub identity: Option<Identity>,
}

/// The longest a check may take (an AssumeRole and a GetCallerIdentity, with retries).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the hub can act in the spoke's account: whom its credentials act as there.
pub async fn check(accounts: &Accounts, target: &Target) -> Access {
    let scope = accounts.scope(target);
    let identity = match tokio::time::timeout(CHECK_TIMEOUT, scope.identity()).await {
        Ok(Ok(identity)) => identity,
        Err(_) => {
            return Access {
                ready: false,
                reason: reasons::ACCESS_FAILED,
                message: format!("STS did not answer within {CHECK_TIMEOUT:?}"),
                identity: None,
            };
        }
        Ok(Err(message)) => {
            return Access {
                ready: false,
                reason: reasons::ACCESS_FAILED,
                message,
                identity: None,
            };
        }
    };
    judge(target, identity)
}

/// How long a passed check holds before it is made again (a failed one is made at every spoke
/// check; a changed target at once).
pub const RECHECK_AFTER: Duration = Duration::from_secs(600);

/// The last check of each SpokeCluster, by name: one GetCallerIdentity per spoke every
/// [`RECHECK_AFTER`], not every spoke check.
#[derive(Debug, Default)]
pub struct AccessChecks(Mutex<HashMap<String, (Target, Instant, Access)>>);

impl AccessChecks {
    /// The last check of `spoke`, when it passed for this `target` less than
    /// [`RECHECK_AFTER`] ago.
    pub fn fresh(&self, spoke: &str, target: &Target) -> Option<Access> {
        let checks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        checks
            .get(spoke)
            .filter(|(t, at, access)| t == target && access.ready && at.elapsed() < RECHECK_AFTER)
            .map(|(_, _, access)| access.clone())
    }

    pub fn record(&self, spoke: &str, target: &Target, access: &Access) {
        let mut checks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        checks.insert(
            spoke.to_owned(),
            (target.clone(), Instant::now(), access.clone()),
        );
    }

    pub fn forget(&self, spoke: &str) {
        let mut checks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        checks.remove(spoke);
    }
}

/// The verdict on `identity` for `target` (pure, for tests).
fn judge(target: &Target, identity: Identity) -> Access {
    if identity.account != target.account {
        return Access {
            ready: false,
            reason: reasons::ACCOUNT_MISMATCH,
            message: format!(
                "the credentials act in account {} as {}, not in spec.aws.accountId {}",
                identity.account, identity.arn, target.account
            ),
            identity: Some(identity),
        };
    }
    let (reason, message) = match &target.role {
        Some(role) => (
            reasons::ROLE_ASSUMED,
            format!(
                "assumed {} in {}: acting as {}",
                role.arn, target.region, identity.arn
            ),
        ),
        None => (
            reasons::HUB_CREDENTIALS,
            format!(
                "the hub's own credentials act in account {} as {}",
                identity.account, identity.arn
            ),
        ),
    };
    Access {
        ready: true,
        reason,
        message,
        identity: Some(identity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: SecretKey<'static> = SecretKey {
        namespace: "ns",
        name: "ext",
        key: "externalId",
    };

    #[test]
    fn external_ids_are_trimmed_and_refused_by_position_only() {
        assert!(external_id(b"abc-123\n", AT).is_ok());
        let (reason, message) = external_id(b"top secret", AT).unwrap_err();
        assert_eq!(reason, reasons::EXTERNAL_ID_INVALID);
        assert_eq!(
            message,
            "Secret ns/ext key \"externalId\" is not a valid external id: \
             character 4 is not one of A-Z a-z 0-9 _+=,.@:/-"
        );
        assert!(!message.contains("secret"));
        let (_, message) = external_id(b"s3cr\xff", AT).unwrap_err();
        assert!(message.ends_with("not UTF-8 text (at byte 5)"), "{message}");
    }

    fn target(role: Option<&str>) -> Target {
        Target {
            account: "222222222222".to_owned(),
            region: "eu-west-1".to_owned(),
            role: role.map(|arn| Role {
                arn: arn.to_owned(),
                external_id: None,
            }),
        }
    }

    #[test]
    fn the_account_acted_in_must_be_the_one_named() {
        let assumed = Identity {
            account: "222222222222".to_owned(),
            arn: "arn:aws:sts::222222222222:assumed-role/hub/globalingress-r0".to_owned(),
        };
        let ok = judge(
            &target(Some("arn:aws:iam::222222222222:role/hub")),
            assumed.clone(),
        );
        assert!(ok.ready);
        assert_eq!(ok.reason, reasons::ROLE_ASSUMED);
        let own = judge(&target(None), assumed);
        assert_eq!(own.reason, reasons::HUB_CREDENTIALS);
        let elsewhere = judge(
            &target(None),
            Identity {
                account: "123456789012".to_owned(),
                arn: "arn:aws:iam::123456789012:user/hub".to_owned(),
            },
        );
        assert!(!elsewhere.ready);
        assert_eq!(elsewhere.reason, reasons::ACCOUNT_MISMATCH);
        assert_eq!(
            elsewhere.message,
            "the credentials act in account 123456789012 as arn:aws:iam::123456789012:user/hub, \
             not in spec.aws.accountId 222222222222"
        );
    }
}
