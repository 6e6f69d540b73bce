//! The certificate deployer (before the load balancers: their listeners use the certificates).
//!
//! `tls.mode: ACM`: in each account and region, the certificate of ours for exactly these
//! names is found by its tags, or requested (tags and idempotency token in the call); its DNS
//! validation records go into the GlobalIngress's claim beside its records, and stay as long
//! as the certificate does (ACM reads them again at every renewal). While ACM validates, the
//! listeners wait (`CertificatesReady=False`, `PendingValidation`, a requeue). A certificate
//! of ours no longer wanted is deleted by the prune once no listener of ours uses it.
//!
//! `tls.mode: CertificateArn`: the given certificate is checked, for each load balancer, to be
//! in its account and region, issued, and to cover every hostname.

use std::collections::BTreeMap;

use tracing::info;

use super::load_balancers::{Note, inventory_of};
use crate::aws::acm;
use crate::aws::elb::CertificateLabels;
use crate::model::certificate::{
    self, CertificateRef, SeenCertificate, TAG_NAMES, WantedCertificate, is_mine,
};
use crate::model::dns::Rrset;
use crate::model::load_balancer::WantedLoadBalancer;
use crate::model::ownership::{TAG_TARGET, tag_value};
use crate::reconcile::Deps;

/// Condition reasons of `CertificatesReady`.
pub mod reasons {
    pub const ISSUED: &str = "Issued";
    pub const PENDING_VALIDATION: &str = "PendingValidation";
    /// `spec.tls.certificateArn` cannot be used (elsewhere, not issued, too narrow).
    pub const INVALID: &str = "CertificateInvalid";
    /// ACM could not be asked, or refused.
    pub const FAILED: &str = "CertificateFailed";
}

/// Event reasons of certificates.
pub mod events {
    pub const REQUESTED: &str = "CertificateRequested";
    pub const DELETED: &str = "CertificateDeleted";
    pub const EXPIRING: &str = "CertificateExpiring";
}

/// How often a certificate ACM is validating is described again (reconciles come every 2 s
/// while a load balancer waits for it).
pub const PENDING_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the certificate of one target's listener stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Issued: its ARN and `notAfter` (seconds since the epoch).
    Ready { arn: String, not_after: Option<i64> },
    /// Being validated (or requested): the listener waits.
    Waiting {
        arn: Option<String>,
        message: String,
    },
    Failed {
        reason: &'static str,
        message: String,
    },
}

impl Resolved {
    pub fn arn(&self) -> Option<&str> {
        match self {
            Self::Ready { arn, .. } => Some(arn),
            Self::Waiting { arn, .. } => arn.as_deref(),
            Self::Failed { .. } => None,
        }
    }
}

/// What the certificate deployer did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Certificates {
    /// By target name (only targets whose listener terminates TLS).
    pub targets: BTreeMap<String, Resolved>,
    /// The validation records of the certificates of ours in use, for the claim.
    pub records: Vec<Rrset>,
    /// The ARNs of the certificates kept (the prune deletes our others).
    pub keep: Vec<String>,
    /// Every wanted certificate was found or requested (else the prune leaves ours alone).
    pub complete: bool,
}

/// Makes every wanted ACM certificate exist and checks every given one.
#[allow(clippy::too_many_arguments)]
pub async fn deploy(
    owner_id: &str,
    owner: &str,
    hosts: &[String],
    wanted: &[WantedCertificate],
    load_balancers: &[WantedLoadBalancer],
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Certificates {
    let mut out = Certificates {
        complete: true,
        ..Certificates::default()
    };
    let now = jiff::Timestamp::now().as_second();
    for cert in wanted {
        let resolved = match acm_certificate(owner_id, owner, cert, deps, notes).await {
            Ok(seen) => {
                out.records.extend(certificate::validation_rrsets(&seen));
                out.keep.push(seen.arn.clone());
                expiry(owner, &cert.region, &seen, now, deps, notes);
                if seen.issued() {
                    Resolved::Ready {
                        arn: seen.arn.clone(),
                        not_after: seen.not_after,
                    }
                } else {
                    Resolved::Waiting {
                        arn: Some(seen.arn.clone()),
                        message: format!(
                            "certificate {} for {} in {} is {}: its validation records are \
                             published in the zone",
                            seen.arn,
                            cert.names.join(", "),
                            cert.region,
                            seen.status
                        ),
                    }
                }
            }
            Err(message) => {
                out.complete = false;
                Resolved::Failed {
                    reason: reasons::FAILED,
                    message: format!("ACM certificate in {}: {message}", cert.region),
                }
            }
        };
        for target in &cert.targets {
            out.targets.insert(target.clone(), resolved.clone());
        }
    }
    for lb in load_balancers {
        if let Some(CertificateRef::Arn(arn)) = &lb.listener.certificate {
            let resolved = given(owner, hosts, lb, arn, deps, now, notes).await;
            out.targets.insert(lb.target.clone(), resolved);
        }
    }
    out.records.sort();
    out.records.dedup();
    out
}

/// The certificate of ours for `cert`'s names in its region: found by tags, else requested.
async fn acm_certificate(
    owner_id: &str,
    owner: &str,
    cert: &WantedCertificate,
    deps: &Deps,
    notes: &mut Vec<Note>,
) -> Result<SeenCertificate, String> {
    let (_, inventory) = inventory_of(&cert.spoke, deps).await?;
    let all = inventory.certificates().await?;
    let region_tag = tag_value(&cert.region);
    let mine: Vec<&SeenCertificate> = all
        .values()
        .filter(|c| is_mine(&c.tags, owner_id, owner))
        .filter(|c| c.tags.get(TAG_TARGET) == Some(&region_tag))
        .filter(|c| c.tags.get(TAG_NAMES) == Some(&cert.names_hash))
        .collect();
    // The issued one first, then one being validated; a dead one is replaced.
    let found = mine
        .iter()
        .find(|c| c.issued())
        .or_else(|| mine.iter().find(|c| !c.dead()))
        .map(|c| (*c).clone());
    let seen = match found {
        Some(seen) if seen.issued() && !seen.validation.is_empty() => return Ok(seen),
        // Pending (or issued before its records were read): look again, every few seconds.
        Some(seen) if !inventory.describe_due(&seen.arn, PENDING_RECHECK).await => return Ok(seen),
        Some(seen) => acm::describe(&inventory.acm, &seen.arn, seen.tags.clone())
            .await?
            .unwrap_or(seen),
        None => {
            let dead = mine.len();
            let mut request = cert.clone();
            if dead > 0 {
                // A token is good for an hour: a replacement needs its own.
                request.idempotency_token = format!(
                    "{:016x}",
                    crate::model::ownership::hash64(
                        format!("{}|{dead}", cert.idempotency_token).as_bytes()
                    )
                );
            }
            let guard = inventory.write_guard();
            let arn = acm::request(&inventory.acm, &request).await?;
            info!(certificate = %arn, region = %cert.region, "certificate requested");
            notes.push(Note {
                warning: false,
                reason: events::REQUESTED,
                message: format!(
                    "ACM certificate {arn} requested in {} for {} (DNS validation through this \
                     zone)",
                    cert.region,
                    cert.names.join(", ")
                ),
            });
            let seen = acm::describe(&inventory.acm, &arn, cert.tags.clone())
                .await?
                .ok_or_else(|| format!("certificate {arn} vanished after its request"))?;
            guard.done();
            seen
        }
    };
    inventory.put_certificate(seen.clone()).await;
    Ok(seen)
}

/// Checks `spec.tls.certificateArn` for the load balancer of `lb`.
async fn given(
    owner: &str,
    hosts: &[String],
    lb: &WantedLoadBalancer,
    arn: &str,
    deps: &Deps,
    now: i64,
    notes: &mut Vec<Note>,
) -> Resolved {
    let (target, inventory) = match inventory_of(&lb.spoke, deps).await {
        Ok(found) => found,
        Err(message) => {
            return Resolved::Failed {
                reason: reasons::FAILED,
                message,
            };
        }
    };
    let here = (target.account.as_str(), target.region.as_str());
    // A certificate of another region or account is refused before any call.
    if let Some(message) = certificate::elsewhere(arn, here) {
        return Resolved::Failed {
            reason: reasons::INVALID,
            message: format!("target {}: {message}", lb.target),
        };
    }
    let seen = match inventory.given_certificate(arn).await {
        Ok(seen) => seen,
        Err(message) => {
            return Resolved::Failed {
                reason: reasons::FAILED,
                message,
            };
        }
    };
    match (
        certificate::check_given(arn, seen.as_ref(), here, hosts),
        seen,
    ) {
        (None, Some(seen)) => {
            expiry(owner, &target.region, &seen, now, deps, notes);
            Resolved::Ready {
                arn: arn.to_owned(),
                not_after: seen.not_after,
            }
        }
        (message, _) => Resolved::Failed {
            reason: reasons::INVALID,
            message: format!(
                "target {}: {}",
                lb.target,
                message.unwrap_or_else(|| format!("spec.tls.certificateArn: {arn} not found"))
            ),
        },
    }
}

/// Sets the expiry gauge, and warns 30 days ahead of a certificate ACM will not renew.
fn expiry(
    owner: &str,
    region: &str,
    seen: &SeenCertificate,
    now: i64,
    deps: &Deps,
    notes: &mut Vec<Note>,
) {
    if let Some(not_after) = seen.not_after {
        deps.load_balancers
            .metrics
            .certificate_expiry
            .get_or_create(&CertificateLabels {
                global_ingress: owner.to_owned(),
                region: region.to_owned(),
                certificate_arn: seen.arn.clone(),
            })
            .set(not_after - now);
    }
    // Once a day per certificate (and per process), not at every reconcile.
    if let Some(message) = certificate::expiry_warning(seen, now)
        && deps
            .load_balancers
            .warn_due(&seen.arn, std::time::Duration::from_secs(24 * 3600))
    {
        notes.push(Note {
            warning: true,
            reason: events::EXPIRING,
            message,
        });
    }
}
