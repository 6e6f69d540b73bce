//! The DNSZone reconciler: does the zone exist at its provider, who serves it, and how many
//! records does this hub own in it?
//!
//! Route 53: GetHostedZone, checking the zone's name matches `spec.domain`; name servers from its
//! delegation set. RFC 2136: a TSIG-signed update that changes nothing (its only content is the
//! prerequisite "the SOA exists"), so a wrong key or missing update rights show here, before any
//! real update; then the zone's SOA and NS records (plain queries). `recordCount` comes from the
//! zone writer's copy of the zone (no extra call once the zone is listed).
//!
//! A zone found at its provider is checked again only every `--zone-check-interval` (10 min):
//! with many zones, one GetHostedZone per zone and resync was most of the Route 53 budget. A zone
//! that is not found, or a publish into it that fails, is checked again soon (with a backoff).

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};

use super::{Context, StatusError as Error, events};
use crate::api::condition::{self, Desired, Status};
use crate::api::dns_zone::{Rfc2136Provider, Route53Provider};
use crate::api::{DNSZone, DNSZoneStatus};
use crate::dns::rfc2136::UpdateClient;
use crate::dns::{Name, RData, RecordType};

const CONTROLLER: &str = "dnszone";
const READY: &str = "Ready";

/// Name servers and (private zones) associated VPCs, or why the zone is not usable.
type Check = Result<(Vec<String>, Vec<String>), (&'static str, String)>;

async fn check_route53(p: &Route53Provider, domain: &str, ctx: &Context) -> Check {
    let id = p.hosted_zone_id.trim_start_matches("/hostedzone/");
    let r53 = ctx.aws.route53();
    let out = r53.get_hosted_zone().id(id).send().await.map_err(|e| {
        if e.as_service_error()
            .is_some_and(|s| s.is_no_such_hosted_zone())
        {
            (
                "HostedZoneNotFound",
                format!("Route 53 has no hosted zone {id}"),
            )
        } else {
            (
                "Route53Error",
                crate::aws::errors::describe("GetHostedZone", &e),
            )
        }
    })?;
    let zone_name = out
        .hosted_zone()
        .map(|z| z.name().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default();
    if zone_name != domain {
        return Err((
            "DomainMismatch",
            format!("hosted zone {id} is {zone_name}, not {domain}"),
        ));
    }
    let name_servers = out
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default();
    let mut vpcs: Vec<String> = out
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_owned))
        .collect();
    if p.private && p.associate_spoke_vpcs {
        let (added, failed) = super::zone_vpcs::associate(id, &vpcs, ctx).await;
        vpcs.extend(added);
        if !failed.is_empty() {
            return Err(("VPCAssociationFailed", failed.join("; ")));
        }
    }
    vpcs.sort();
    Ok((name_servers, vpcs))
}

async fn check_rfc2136(p: &Rfc2136Provider, domain: &str, ctx: &Context) -> Check {
    let (server, key) = crate::dns::writers::rfc2136_access(p, &ctx.deps.client).await?;
    let zone: Name = format!("{domain}.")
        .parse()
        .map_err(|e| ("InvalidDomain", format!("{e}")))?;
    let timeout = Duration::from_secs(5);
    let client = UpdateClient::connect(server, &key, timeout, ctx.settings.dns_bind_address)
        .await
        .map_err(|e| ("ServerUnreachable", format!("{server}: {e}")))?;
    // The no-op update is an update all the same: only the leader sends it.
    if !ctx.deps.gate.leadership.is_leader() {
        return Err((
            "NotLeader",
            "not checked: this replica does not hold the Lease".to_owned(),
        ));
    }
    client.verify_update_rights(&zone).await.map_err(|e| {
        (
            "UpdateRefused",
            format!(
                "{server} refused a signed no-op update of {domain} \
                 (wrong TSIG key or no update rights): {e}"
            ),
        )
    })?;
    let soa = client
        .query(&zone, RecordType::SOA)
        .await
        .map_err(|e| ("QueryFailed", format!("SOA query to {server} failed: {e}")))?;
    if soa.is_empty() {
        return Err((
            "NotAuthoritative",
            format!("{server} has no SOA for {domain}"),
        ));
    }
    let ns = client
        .query(&zone, RecordType::NS)
        .await
        .unwrap_or_default();
    Ok((
        ns.iter()
            .filter_map(|r| match &r.data {
                RData::NS(n) => Some(n.0.to_string()),
                _ => None,
            })
            .collect(),
        Vec::new(),
    ))
}

pub async fn reconcile(zone: Arc<DNSZone>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented(&ctx.metrics, CONTROLLER, reconcile_inner(zone, &ctx)).await
}

async fn reconcile_inner(zone: Arc<DNSZone>, ctx: &Context) -> Result<Action, Error> {
    if !ctx.deps.gate.leadership.is_leader() {
        ctx.may_write(CONTROLLER, "status");
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let name = zone.name_any();
    // Found at this generation a short while ago (our own status patch, a GlobalIngress's
    // change, a restart of the watch all reconcile the zone again): no call.
    if let Some(wait) = ctx.zone_checks.fresh(&name, zone.metadata.generation) {
        // Only the count moves: from the writer's copy of the zone, no call.
        let previous = zone.status.clone().unwrap_or_default();
        let count = owned_records(&zone, ctx).await.or(previous.record_count);
        if count != previous.record_count && ctx.may_write(CONTROLLER, "status") {
            let api: Api<DNSZone> = Api::all(ctx.deps.client.clone());
            let new = DNSZoneStatus {
                record_count: count,
                ..previous
            };
            super::apply_status(ctx, &api, &name, &new)
                .await
                .map_err(|source| Error::PatchStatus { source })?;
        }
        return Ok(Action::requeue(wait.min(ctx.settings.resync)));
    }
    let domain = zone.spec.domain.trim_end_matches('.').to_ascii_lowercase();
    let previous = zone.status.clone().unwrap_or_default();
    let was_ready = condition::find(&previous.conditions, READY).map(|c| c.status == "True");
    let key = format!("dnszone/{name}");
    let (provider, result) = match (&zone.spec.provider.route53, &zone.spec.provider.rfc2136) {
        (Some(p), _) => ("Route53", check_route53(p, &domain, ctx).await),
        (None, Some(p)) => ("RFC2136", check_rfc2136(p, &domain, ctx).await),
        // The API server refuses this; an object stored before the rule existed says so.
        (None, None) => (
            "None",
            Err((
                "NoProvider",
                "spec.provider: set route53 or rfc2136".to_owned(),
            )),
        ),
    };
    if let Err(("NotLeader", _)) = &result {
        return Ok(Action::requeue(ctx.settings.resync));
    }
    let record_count = match &result {
        Ok(_) => owned_records(&zone, ctx).await.or(previous.record_count),
        Err(_) => previous.record_count,
    };
    let desired = match &result {
        Ok((ns, vpcs)) => Desired::new(
            READY,
            Status::True,
            "ZoneFound",
            if vpcs.is_empty() {
                format!(
                    "zone {domain} found at {provider}, {} name server(s)",
                    ns.len()
                )
            } else {
                format!(
                    "private zone {domain} found at {provider}, associated with {} VPC(s)",
                    vpcs.len()
                )
            },
        ),
        Err((reason, message)) => Desired::new(READY, Status::False, reason, message.clone()),
    };
    let now = super::now_rfc3339();
    let new = DNSZoneStatus {
        observed_generation: zone.metadata.generation,
        provider: Some(provider.to_owned()),
        name_servers: result
            .as_ref()
            .map_or_else(|_| previous.name_servers.clone(), |(ns, _)| ns.clone()),
        record_count,
        vpcs: result
            .as_ref()
            .map_or_else(|_| previous.vpcs.clone(), |(_, v)| v.clone()),
        conditions: condition::merge(
            &previous.conditions,
            &[desired],
            zone.metadata.generation,
            &now,
        ),
    };
    let changed = new.observed_generation != previous.observed_generation
        || new.provider != previous.provider
        || new.name_servers != previous.name_servers
        || new.vpcs != previous.vpcs
        || new.record_count != previous.record_count
        || !condition::eq_ignoring_time(&new.conditions, &previous.conditions);
    if changed && ctx.may_write(CONTROLLER, "status") {
        let api: Api<DNSZone> = Api::all(ctx.deps.client.clone());
        super::apply_status(ctx, &api, &name, &new)
            .await
            .map_err(|source| Error::PatchStatus { source })?;
        if was_ready != Some(result.is_ok()) {
            let (reason, note) = match &result {
                Ok(_) => (
                    events::ZONE_READY,
                    format!("zone {domain} found at {provider}"),
                ),
                Err((r, m)) => (events::ZONE_UNAVAILABLE, format!("{r}: {m}")),
            };
            ctx.event(
                CONTROLLER,
                &zone.object_ref(&()),
                result.is_err(),
                reason,
                note,
            )
            .await;
        }
    }
    Ok(match &result {
        // Known to exist: look again rarely (the writers' errors bring it back sooner).
        Ok(_) => {
            ctx.publish_backoff.succeeded(&key);
            ctx.zone_checks.found(
                &name,
                zone.metadata.generation,
                ctx.settings.zone_check_interval,
            );
            // Back at the resync for the records count (the fresh path above: no call); our own
            // status patch no longer reconciles the zone again.
            Action::requeue(ctx.settings.resync.min(ctx.settings.zone_check_interval))
        }
        Err(_) => {
            ctx.zone_checks.forget(&name);
            Action::requeue(ctx.publish_backoff.failed(&key).max(Duration::from_secs(5)))
        }
    })
}

/// The records this hub owns in the zone, from its writer's copy (listed once if needed).
async fn owned_records(zone: &DNSZone, ctx: &Context) -> Option<i64> {
    let writer = ctx.deps.writers.for_zone(zone).await.ok()?;
    let count = tokio::time::timeout(Duration::from_secs(30), writer.count(&zone.spec.owner_id))
        .await
        .ok()?
        .ok()?;
    i64::try_from(count.owned).ok()
}

pub fn error_policy(_z: Arc<DNSZone>, _e: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
