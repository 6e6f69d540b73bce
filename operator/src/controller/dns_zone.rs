//! The DNSZone reconciler: does the zone exist at its provider, and who serves it?
//!
//! Route 53: GetHostedZone, checking the zone's name matches `spec.domain`; name servers from its
//! delegation set. RFC 2136: a TSIG-signed update that changes nothing (its only content is the
//! prerequisite "the SOA exists"), so a wrong key or missing update rights show here, before any
//! real update; then the zone's SOA and NS records (plain queries).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource as _, ResourceExt as _};

use super::{Context, StatusError as Error, events};
use crate::api::condition::{self, Desired, Status};
use crate::api::dns_zone::{Rfc2136Provider, Route53Provider, TsigAlgorithm};
use crate::api::{DNSZone, DNSZoneStatus};
use crate::dns::rfc2136::UpdateClient;
use crate::dns::tsig::{Algorithm, TsigKey};
use crate::dns::{Name, RData, RecordType};

const CONTROLLER: &str = "dnszone";
const READY: &str = "Ready";

type Check = Result<Vec<String>, (&'static str, String)>;

async fn check_route53(p: &Route53Provider, domain: &str, ctx: &Context) -> Check {
    let id = p.hosted_zone_id.trim_start_matches("/hostedzone/");
    let r53 = ctx.aws.route53();
    let out = r53.get_hosted_zone().id(id).send().await.map_err(|e| {
        let e = e.into_service_error();
        if e.is_no_such_hosted_zone() {
            (
                "HostedZoneNotFound",
                format!("Route 53 has no hosted zone {id}"),
            )
        } else {
            ("Route53Error", format!("GetHostedZone {id}: {e}"))
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
    Ok(out
        .delegation_set()
        .map(|d| d.name_servers().to_vec())
        .unwrap_or_default())
}

/// What an RFC 2136 DNSZone needs to be reached: the server's address and the TSIG key from
/// its Secret. Errors are (condition reason, message), never containing the secret.
pub async fn rfc2136_access(
    p: &Rfc2136Provider,
    client: &kube::Client,
) -> Result<(std::net::SocketAddr, TsigKey), (&'static str, String)> {
    let r = &p.tsig_secret_ref;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
    let secret = secrets
        .get_opt(&r.name)
        .await
        .map_err(|e| {
            (
                "TsigSecretUnreadable",
                format!("cannot read Secret {}/{}: {e}", r.namespace, r.name),
            )
        })?
        .ok_or_else(|| {
            (
                "TsigSecretNotFound",
                format!("Secret {}/{} does not exist", r.namespace, r.name),
            )
        })?;
    let secret_b64 = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_owned())
        .ok_or_else(|| {
            (
                "TsigSecretKeyMissing",
                format!("Secret {}/{} has no key {:?}", r.namespace, r.name, r.key),
            )
        })?;
    let algorithm = match p.algorithm {
        TsigAlgorithm::HmacSha256 => Algorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => Algorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => Algorithm::HmacSha512,
    };
    let key = TsigKey::from_base64(&p.tsig_key_name, algorithm, &secret_b64)
        .map_err(|e| ("TsigKeyInvalid", e.to_string()))?;
    let server = resolve(&p.server)
        .await
        .map_err(|m| ("ServerUnresolvable", m))?;
    Ok((server, key))
}

async fn check_rfc2136(p: &Rfc2136Provider, domain: &str, ctx: &Context) -> Check {
    let (server, key) = rfc2136_access(p, &ctx.client).await?;
    let zone: Name = format!("{domain}.")
        .parse()
        .map_err(|e| ("InvalidDomain", format!("{e}")))?;
    let timeout = Duration::from_secs(5);
    let client = UpdateClient::connect(server, &key, timeout)
        .await
        .map_err(|e| ("ServerUnreachable", format!("{server}: {e}")))?;
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
    Ok(ns
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(n) => Some(n.0.to_string()),
            _ => None,
        })
        .collect())
}

async fn resolve(server: &str) -> Result<std::net::SocketAddr, String> {
    let with_port = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_owned()
    } else {
        format!("{server}:53")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("cannot resolve {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server} resolves to no address"))
}

pub async fn reconcile(zone: Arc<DNSZone>, ctx: Arc<Context>) -> Result<Action, Error> {
    super::instrumented(&ctx.metrics, CONTROLLER, reconcile_inner(zone, &ctx)).await
}

async fn reconcile_inner(zone: Arc<DNSZone>, ctx: &Context) -> Result<Action, Error> {
    let requeue = Action::requeue(ctx.settings.resync);
    if !ctx.leadership.is_leader() {
        ctx.may_write(CONTROLLER, "status");
        return Ok(requeue);
    }
    let domain = zone.spec.domain.trim_end_matches('.').to_ascii_lowercase();
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
    let previous = zone.status.clone().unwrap_or_default();
    let desired = match &result {
        Ok(ns) => Desired::new(
            READY,
            Status::True,
            "ZoneFound",
            format!(
                "zone {domain} found at {provider}, {} name server(s)",
                ns.len()
            ),
        ),
        Err((reason, message)) => Desired::new(READY, Status::False, reason, message.clone()),
    };
    let now = super::now_rfc3339();
    let new = DNSZoneStatus {
        observed_generation: zone.metadata.generation,
        provider: Some(provider.to_owned()),
        name_servers: result
            .clone()
            .unwrap_or_else(|_| previous.name_servers.clone()),
        record_count: previous.record_count,
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
        || !condition::eq_ignoring_time(&new.conditions, &previous.conditions);
    if changed && ctx.may_write(CONTROLLER, "status") {
        let api: Api<DNSZone> = Api::all(ctx.client.clone());
        super::apply_status(&api, &zone.name_any(), &new)
            .await
            .map_err(|source| Error::PatchStatus { source })?;
        let was_ready = condition::find(&previous.conditions, READY).map(|c| c.status == "True");
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
    Ok(requeue)
}

pub fn error_policy(_z: Arc<DNSZone>, _e: &Error, _ctx: Arc<Context>) -> Action {
    super::requeue_after_error()
}
