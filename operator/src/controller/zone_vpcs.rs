//! Private hosted zones: associating the spokes' VPCs (`route53.associateSpokeVpcs`).
//!
//! Each SpokeCluster with `spec.aws` has its VPC associated with the zone, at each zone check.
//! A VPC of the zone's own account is associated with the zone's credentials; for a VPC of
//! another account Route 53 refuses that, and the zone's account authorises the association
//! first (CreateVPCAssociationAuthorization), the spoke's credentials associate it, and the
//! authorisation is removed again. Associations are only ever added: a VPC may serve other
//! zones' users, and removing the last one is refused anyway.

use aws_sdk_route53::types::{Vpc, VpcRegion};
use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
use tracing::info;

use super::Context;
use crate::aws::errors;

/// Associates the VPC of every SpokeCluster with `spec.aws` not in `associated`; returns the
/// VPCs associated now and what failed.
pub async fn associate(
    zone_id: &str,
    associated: &[String],
    ctx: &Context,
) -> (Vec<String>, Vec<String>) {
    let zone_client = ctx.aws.route53();
    let mut added = Vec::new();
    let mut failed = Vec::new();
    for spoke in ctx.deps.spokes.state() {
        let Some(aws) = &spoke.spec.aws else { continue };
        if associated.contains(&aws.vpc_id) || added.contains(&aws.vpc_id) {
            continue;
        }
        let vpc = Vpc::builder()
            .vpc_id(&aws.vpc_id)
            .vpc_region(VpcRegion::from(spoke.spec.region.as_str()))
            .build();
        let same_account = zone_client
            .associate_vpc_with_hosted_zone()
            .hosted_zone_id(zone_id)
            .vpc(vpc.clone())
            .send()
            .await;
        let result = match same_account {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("NotAuthorizedException" | "InvalidVPCId")) => {
                across_accounts(zone_id, &vpc, &spoke, ctx).await
            }
            Err(e) => Err(errors::describe("AssociateVPCWithHostedZone", &e)),
        };
        match result {
            Ok(()) => {
                info!(zone = %zone_id, vpc = %aws.vpc_id, "VPC associated with the private zone");
                added.push(aws.vpc_id.clone());
            }
            Err(e) => failed.push(format!("VPC {}: {e}", aws.vpc_id)),
        }
    }
    (added, failed)
}

async fn across_accounts(
    zone_id: &str,
    vpc: &Vpc,
    spoke: &crate::api::SpokeCluster,
    ctx: &Context,
) -> Result<(), String> {
    let zone_client = ctx.aws.route53();
    zone_client
        .create_vpc_association_authorization()
        .hosted_zone_id(zone_id)
        .vpc(vpc.clone())
        .send()
        .await
        .map_err(|e| errors::describe("CreateVPCAssociationAuthorization", &e))?;
    let target = crate::spoke::aws::target(spoke, &ctx.deps.client)
        .await
        .map_err(|(reason, message)| format!("{reason}: {message}"))?
        .ok_or_else(|| "no spec.aws".to_owned())?;
    ctx.deps
        .accounts
        .scope(&target)
        .route53()
        .associate_vpc_with_hosted_zone()
        .hosted_zone_id(zone_id)
        .vpc(vpc.clone())
        .send()
        .await
        .map_err(|e| errors::describe("AssociateVPCWithHostedZone", &e))?;
    // The authorisation has served; a leftover one is harmless, so a failure is only logged.
    if let Err(e) = zone_client
        .delete_vpc_association_authorization()
        .hosted_zone_id(zone_id)
        .vpc(vpc.clone())
        .send()
        .await
    {
        tracing::debug!(error = %errors::describe("DeleteVPCAssociationAuthorization", &e), "authorisation left");
    }
    Ok(())
}
