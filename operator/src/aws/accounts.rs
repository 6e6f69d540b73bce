//! AWS clients per (account, region): the hub's own credentials, or a role it assumes.
//!
//! A SpokeCluster's `spec.aws` names the account and, optionally, a role to assume there (and
//! the Secret of the external id its trust policy asks for); its `spec.region` the region. One
//! [`Scope`] per such triple is built once and kept: its SDK configuration carries a
//! credentials provider that calls STS AssumeRole with the hub's credentials (session name
//! `globalingress-<replica>`, so CloudTrail says which hub and replica acted) and the SDK's
//! identity cache, shared by every client of the scope, keeps the credentials and refreshes
//! them before they expire. Without a role the scope uses the hub's credentials in the spoke's
//! region.
//!
//! Every client of a scope spends from the process's one [`Budget`], in the buckets of the
//! scope's account (the role's; `hub` for the hub's own credentials), region and service; the
//! AssumeRole calls themselves are made with the hub's credentials and spend the hub's STS
//! bucket.
//!
//! The external id is a secret: it is held in [`ExternalId`], whose `Debug` prints nothing of
//! it, and no error here repeats it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider, future};

use super::budget::{Budget, HUB_ACCOUNT};
use super::errors;

/// A role to assume, with the external id its trust policy asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role {
    pub arn: String,
    pub external_id: Option<ExternalId>,
}

/// An external id read from a Secret. `Debug` prints nothing of it; it is never displayed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    /// The id, when STS would accept it (2–1224 characters of `[\w+=,.@:/-]`); else the
    /// 1-based position of the first character it would refuse (0 for a wrong length) — never
    /// the character itself.
    pub fn parse(text: &str) -> Result<Self, usize> {
        let len = text.chars().count();
        if !(2..=1224).contains(&len) {
            return Err(0);
        }
        match text
            .chars()
            .position(|c| !(c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)))
        {
            Some(at) => Err(at + 1),
            None => Ok(Self(text.to_owned())),
        }
    }
}

impl std::fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalId(..)")
    }
}

/// Where calls are made: an account, a region, and how the hub gets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The account the SpokeCluster names (`spec.aws.accountId`).
    pub account: String,
    pub region: String,
    /// `None`: the hub's own credentials.
    pub role: Option<Role>,
}

/// The clients of one [`Target`]; clone freely (clones share credentials and their cache).
#[derive(Debug, Clone)]
pub struct Scope {
    sdk: SdkConfig,
    budget: Budget,
}

impl Scope {
    /// An STS client of this scope (GetCallerIdentity says whom the credentials act as).
    pub fn sts(&self) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }

    /// A CloudWatch client of this scope (the alarms `Private` Route 53 health checks follow).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// A Route 53 client of this scope (a spoke's side of a private zone's VPC association).
    pub fn route53(&self) -> aws_sdk_route53::Client {
        let config = aws_sdk_route53::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }

    /// An ACM client of this scope (certificates of `tls.mode: ACM`).
    pub fn acm(&self) -> aws_sdk_acm::Client {
        let config = aws_sdk_acm::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_acm::Client::from_conf(config)
    }

    /// An EC2 client of this scope (PrivateLink endpoint services and endpoints).
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    /// An Elastic Load Balancing (v2) client of this scope.
    pub fn elbv2(&self) -> aws_sdk_elasticloadbalancingv2::Client {
        let config = aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_elasticloadbalancingv2::Client::from_conf(config)
    }

    /// The account and ARN the scope's credentials act as (STS GetCallerIdentity).
    pub async fn identity(&self) -> Result<Identity, String> {
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| errors::describe("GetCallerIdentity", &e))?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
        })
    }
}

/// Whom a scope's credentials act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// Every scope of the process, built from the hub's SDK configuration.
#[derive(Debug, Clone)]
pub struct Accounts {
    hub: SdkConfig,
    budget: Budget,
    session_name: String,
    scopes: Arc<Mutex<HashMap<Target, Scope>>>,
}

impl Accounts {
    /// `hub` is the SDK configuration of the hub's own credentials (with the budget's HTTP
    /// client); `replica` names this replica in role session names.
    pub fn new(hub: SdkConfig, budget: Budget, replica: &str) -> Self {
        Self {
            hub,
            budget,
            session_name: session_name(replica),
            scopes: Arc::default(),
        }
    }

    /// The scope of `target`, built on first use and kept (a changed role or external id is
    /// another target: the old scope is dropped with it).
    pub fn scope(&self, target: &Target) -> Scope {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(scope) = scopes.get(target) {
            return scope.clone();
        }
        // One scope per (account, region, role ARN): a rotated external id replaces the old.
        scopes.retain(|t, _| {
            !(t.account == target.account
                && t.region == target.region
                && t.role.as_ref().map(|r| &r.arn) == target.role.as_ref().map(|r| &r.arn))
        });
        let scope = self.build(target);
        scopes.insert(target.clone(), scope.clone());
        scope
    }

    fn build(&self, target: &Target) -> Scope {
        let region = Region::new(target.region.clone());
        let Some(role) = &target.role else {
            return Scope {
                sdk: self
                    .hub
                    .to_builder()
                    .region(region)
                    .http_client(self.budget.http_client_for(HUB_ACCOUNT))
                    .build(),
                budget: self.budget.clone(),
            };
        };
        // AssumeRole is called with the hub's credentials, in the spoke's region.
        let hub_sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.hub)
                .region(region.clone())
                .interceptor(self.budget.interceptor())
                .build(),
        );
        let provider = AssumeRole {
            sts: hub_sts,
            role: role.clone(),
            session_name: self.session_name.clone(),
        };
        let account = role_account(&role.arn).unwrap_or(&target.account);
        Scope {
            sdk: self
                .hub
                .to_builder()
                .region(region)
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .http_client(self.budget.http_client_for(account))
                .build(),
            budget: self.budget.clone(),
        }
    }
}

/// The account of a role ARN (`arn:aws:iam::<account>:role/<name>`).
fn role_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// A role session name (at most 64 characters of `[\w+=,.@-]`) naming the replica.
fn session_name(replica: &str) -> String {
    let cleaned: String = replica
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("globalingress-{cleaned}")
        .chars()
        .take(64)
        .collect()
}

/// How long assumed credentials last (the SDK's identity cache renews them before they end).
const SESSION_DURATION: Duration = Duration::from_secs(3600);

/// Credentials of a role, from STS AssumeRole with the hub's credentials.
#[derive(Debug)]
struct AssumeRole {
    sts: aws_sdk_sts::Client,
    role: Role,
    session_name: String,
}

/// Why a role could not be assumed, in one line without the external id.
#[derive(Debug, thiserror::Error)]
#[error("cannot assume {role}: {what}")]
struct AssumeRoleFailed {
    role: String,
    what: String,
}

impl AssumeRole {
    async fn load(&self) -> provider::Result {
        let failed = |what: String| {
            CredentialsError::provider_error(AssumeRoleFailed {
                role: self.role.arn.clone(),
                what,
            })
        };
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role.arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.role.external_id.as_ref().map(|e| e.0.clone()))
            .duration_seconds(i32::try_from(SESSION_DURATION.as_secs()).unwrap_or(3600))
            .send()
            .await
            .map_err(|e| failed(errors::describe("AssumeRole", &e)))?;
        let creds = out
            .credentials()
            .ok_or_else(|| failed("AssumeRole answered without credentials".to_owned()))?;
        let expiry = u64::try_from(creds.expiration().secs())
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        Ok(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_owned()),
            expiry,
            "globalingress-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumeRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.load())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_name_the_replica_within_stss_rules() {
        assert_eq!(session_name("hub-0"), "globalingress-hub-0");
        assert_eq!(session_name("pod/ns:x y"), "globalingress-pod-ns-x-y");
        let long = session_name(&"r".repeat(100));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("globalingress-rrr"));
    }

    #[test]
    fn external_ids_are_checked_without_repeating_them() {
        assert!(ExternalId::parse("Abc-123_x+=,.@:/").is_ok());
        assert_eq!(ExternalId::parse("x"), Err(0));
        assert_eq!(ExternalId::parse(&"x".repeat(1225)), Err(0));
        assert_eq!(ExternalId::parse("abc def"), Err(4));
        assert_eq!(ExternalId::parse("ab\n"), Err(3));
        let id = ExternalId::parse("s3cr3t-value").unwrap();
        assert_eq!(format!("{id:?}"), "ExternalId(..)");
        let role = Role {
            arn: "arn:aws:iam::222222222222:role/hub".to_owned(),
            external_id: Some(id),
        };
        assert!(!format!("{role:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_budget_account_is_the_roles() {
        assert_eq!(
            role_account("arn:aws:iam::222222222222:role/hub"),
            Some("222222222222")
        );
        assert_eq!(role_account("nonsense"), None);
    }
}
