//! Route 53 adapter of [`ZoneProvider`]: ListResourceRecordSets, ChangeResourceRecordSets,
//! GetChange, with typed errors.
//!
//! Records of types or routing policies globalingress never writes (MX, NS, failover,
//! multivalue, ...) are listed too, as [`RecordType::Other`] / [`RecordRouting::Foreign`]: they
//! make their name taken, and the zone writer never changes them.

use std::collections::HashSet;
use std::str::FromStr as _;

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    AliasTarget, Change as R53Change, ChangeAction, ChangeBatch, ChangeStatus, GeoLocation,
    ResourceRecord, ResourceRecordSet, ResourceRecordSetRegion, RrType,
};
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::provider::{ProviderError, Submitted, ZoneProvider};
use super::records::{Change, Rrset};
use crate::aws::errors;
use crate::model::dns::{Alias, Continent, Location, ProviderKind, RecordRouting, RecordType};

/// One hosted zone.
#[derive(Debug, Clone)]
pub struct Route53Zone {
    client: Client,
    zone_id: String,
}

impl Route53Zone {
    pub fn new(client: Client, hosted_zone_id: &str) -> Self {
        Self {
            client,
            zone_id: hosted_zone_id.trim_start_matches("/hostedzone/").to_owned(),
        }
    }

    async fn list_all(&self) -> Result<Vec<Rrset>, ProviderError> {
        let mut out = Vec::new();
        let mut cursor: Option<(String, RrType, Option<String>)> = None;
        let mut seen = HashSet::new();
        loop {
            let mut req = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(&self.zone_id);
            if let Some((name, rtype, id)) = &cursor {
                req = req
                    .start_record_name(name)
                    .start_record_type(rtype.clone())
                    .set_start_record_identifier(id.clone());
            }
            let page = req.send().await.map_err(|e| {
                let message = errors::describe("ListResourceRecordSets", &e);
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_hosted_zone())
                {
                    ProviderError::ZoneNotFound {
                        message: format!("Route 53 has no hosted zone {}", self.zone_id),
                    }
                } else {
                    ProviderError::Unavailable { message }
                }
            })?;
            out.extend(page.resource_record_sets().iter().map(from_route53));
            if !page.is_truncated() {
                break;
            }
            let next = (
                page.next_record_name().unwrap_or_default().to_owned(),
                page.next_record_type().cloned().unwrap_or(RrType::A),
                page.next_record_identifier().map(str::to_owned),
            );
            // A cursor seen before would loop forever (moto never returns the identifier inside
            // a weighted set); AWS never repeats one either, so stopping is right for both.
            if !seen.insert(format!("{next:?}")) {
                break;
            }
            cursor = Some(next);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn submit_changes(&self, changes: &[Change]) -> Result<Submitted, ProviderError> {
        let mut batch = ChangeBatch::builder().comment("globalingress");
        for change in changes {
            let (action, rrset) = match change {
                Change::Create(r) => (ChangeAction::Create, r),
                Change::Upsert { new, .. } => (ChangeAction::Upsert, new),
                Change::Delete(r) => (ChangeAction::Delete, r),
            };
            batch = batch.changes(
                R53Change::builder()
                    .action(action)
                    .resource_record_set(to_route53(rrset)?)
                    .build()
                    .map_err(|e| refused(e.to_string()))?,
            );
        }
        let batch = batch.build().map_err(|e| refused(e.to_string()))?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| {
                let message = errors::describe("ChangeResourceRecordSets", &e);
                match e.as_service_error() {
                    Some(s) if s.is_invalid_change_batch() || s.is_invalid_input() => {
                        refused(message)
                    }
                    Some(s) if s.is_no_such_hosted_zone() => ProviderError::ZoneNotFound {
                        message: format!("Route 53 has no hosted zone {}", self.zone_id),
                    },
                    _ => ProviderError::Unavailable { message },
                }
            })?;
        match out.change_info() {
            Some(info) if *info.status() == ChangeStatus::Insync => Ok(Submitted {
                change_id: None,
                applied: super::provider::Applied {
                    in_sync_at: Some(jiff::Timestamp::now()),
                    answer_seen_at: None,
                },
            }),
            Some(info) => Ok(Submitted {
                change_id: Some(info.id().to_owned()),
                applied: super::provider::Applied::default(),
            }),
            None => Err(ProviderError::Unavailable {
                message: "ChangeResourceRecordSets answered without ChangeInfo".to_owned(),
            }),
        }
    }

    async fn change_in_sync(&self, id: &str) -> Result<bool, ProviderError> {
        let out = self.client.get_change().id(id).send().await.map_err(|e| {
            ProviderError::Unavailable {
                message: errors::describe("GetChange", &e),
            }
        })?;
        Ok(out.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync))
    }
}

impl ZoneProvider for Route53Zone {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Route53
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>> {
        self.list_all().boxed()
    }

    fn submit<'a>(
        &'a self,
        changes: &'a [Change],
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        self.submit_changes(changes).boxed()
    }

    fn in_sync<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, ProviderError>> {
        self.change_in_sync(id).boxed()
    }
}

fn refused(message: String) -> ProviderError {
    ProviderError::Refused { message }
}

fn rtype_of(t: &RrType) -> RecordType {
    match t {
        RrType::A => RecordType::A,
        RrType::Aaaa => RecordType::AAAA,
        RrType::Cname => RecordType::CNAME,
        RrType::Txt => RecordType::TXT,
        // Its IANA code (0 for a type hickory does not know: still "some record").
        other => RecordType::Other(
            hickory_net::proto::rr::RecordType::from_str(other.as_str()).map_or(0, u16::from),
        ),
    }
}

fn route53_type(t: RecordType) -> RrType {
    match t {
        RecordType::A => RrType::A,
        RecordType::AAAA => RrType::Aaaa,
        RecordType::CNAME => RrType::Cname,
        RecordType::TXT => RrType::Txt,
        RecordType::Other(code) => RrType::from(
            hickory_net::proto::rr::RecordType::from(code)
                .to_string()
                .as_str(),
        ),
    }
}

/// Route 53 writes `*` as `\052` in names it returns.
fn normalize_name(name: &str) -> String {
    name.replace("\\052", "*")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn continent(code: &str) -> Option<Continent> {
    Some(match code {
        "AF" => Continent::AF,
        "AN" => Continent::AN,
        "AS" => Continent::AS,
        "EU" => Continent::EU,
        "NA" => Continent::NA,
        "OC" => Continent::OC,
        "SA" => Continent::SA,
        _ => return None,
    })
}

/// Converts a listed record set. Types and routing policies we never write (SOA, NS, MX,
/// failover records, ...) come back as [`RecordType::Other`] or [`RecordRouting::Foreign`]:
/// they stay in the zone, untouched, and make their name taken.
fn from_route53(r: &ResourceRecordSet) -> Rrset {
    let rtype = rtype_of(r.r#type());
    let set_id = r.set_identifier().map(str::to_owned);
    let routing = routing_of(r, set_id.clone()).unwrap_or_else(|| RecordRouting::Foreign {
        set_id: set_id.unwrap_or_default(),
    });
    let mut values: Vec<String> = r
        .resource_records()
        .iter()
        .map(|v| v.value().to_owned())
        .collect();
    values.sort();
    Rrset {
        name: normalize_name(r.name()),
        rtype,
        routing,
        ttl: r.ttl().and_then(|t| u32::try_from(t).ok()),
        values,
        alias: r.alias_target().map(|a| Alias {
            dns_name: a.dns_name().trim_end_matches('.').to_ascii_lowercase(),
            hosted_zone_id: a.hosted_zone_id().to_owned(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        health_check_id: r.health_check_id().map(str::to_owned),
    }
}

/// The routing of a listed record set, when it is one globalingress writes.
fn routing_of(r: &ResourceRecordSet, set_id: Option<String>) -> Option<RecordRouting> {
    if r.failover().is_some()
        || r.multi_value_answer().is_some()
        || r.cidr_routing_config().is_some()
    {
        return None;
    }
    Some(match (set_id, r.weight(), r.geo_location(), r.region()) {
        (None, _, _, _) => RecordRouting::Simple,
        (Some(set_id), Some(w), _, _) => RecordRouting::Weighted {
            set_id,
            weight: u8::try_from(w).ok()?,
        },
        (Some(set_id), None, Some(geo), _) => {
            let location = match (
                geo.continent_code(),
                geo.country_code(),
                geo.subdivision_code(),
            ) {
                (Some(c), _, _) => Location::Continent(continent(c)?),
                (None, Some("*"), _) => Location::Default,
                (None, Some(country), Some(sub)) => Location::Subdivision {
                    country: country.to_owned(),
                    subdivision: sub.to_owned(),
                },
                (None, Some(country), None) => Location::Country(country.to_owned()),
                _ => return None,
            };
            RecordRouting::Geolocation { set_id, location }
        }
        (Some(set_id), None, None, Some(region)) => RecordRouting::Latency {
            set_id,
            region: region.as_str().to_owned(),
        },
        _ => return None,
    })
}

fn to_route53(r: &Rrset) -> Result<ResourceRecordSet, ProviderError> {
    let mut b = ResourceRecordSet::builder()
        .name(format!("{}.", r.name))
        .r#type(route53_type(r.rtype));
    match &r.routing {
        RecordRouting::Foreign { .. } => {
            return Err(refused(format!(
                "{}: a record of a routing policy globalingress does not write",
                r.name
            )));
        }
        RecordRouting::Simple => {}
        RecordRouting::Weighted { set_id, weight } => {
            b = b.set_identifier(set_id).weight(i64::from(*weight));
        }
        RecordRouting::Geolocation { set_id, location } => {
            let geo = match location {
                Location::Default => GeoLocation::builder().country_code("*"),
                Location::Continent(c) => GeoLocation::builder().continent_code(format!("{c:?}")),
                Location::Country(c) => GeoLocation::builder().country_code(c),
                Location::Subdivision {
                    country,
                    subdivision,
                } => GeoLocation::builder()
                    .country_code(country)
                    .subdivision_code(subdivision),
            };
            b = b.set_identifier(set_id).geo_location(geo.build());
        }
        RecordRouting::Latency { set_id, region } => {
            b = b
                .set_identifier(set_id)
                .region(ResourceRecordSetRegion::from(region.as_str()));
        }
    }
    if let Some(id) = &r.health_check_id {
        b = b.health_check_id(id);
    }
    match &r.alias {
        Some(a) => {
            b = b.alias_target(
                AliasTarget::builder()
                    .dns_name(&a.dns_name)
                    .hosted_zone_id(&a.hosted_zone_id)
                    .evaluate_target_health(a.evaluate_target_health)
                    .build()
                    .map_err(|e| refused(e.to_string()))?,
            );
        }
        None => {
            b = b.ttl(i64::from(r.ttl.unwrap_or(300)));
            for v in &r.values {
                b = b.resource_records(
                    ResourceRecord::builder()
                        .value(v)
                        .build()
                        .map_err(|e| refused(e.to_string()))?,
                );
            }
        }
    }
    b.build().map_err(|e| refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sets_round_trip_through_the_sdk_types() {
        let cases = vec![
            Rrset {
                name: "*.app.example.com".into(),
                rtype: RecordType::A,
                routing: RecordRouting::Geolocation {
                    set_id: "eu-eu".into(),
                    location: Location::Continent(Continent::EU),
                },
                ttl: Some(30),
                values: vec!["192.0.2.1".into()],
                alias: None,
                health_check_id: None,
            },
            Rrset {
                name: "app.example.com".into(),
                rtype: RecordType::A,
                routing: RecordRouting::Latency {
                    set_id: "x".into(),
                    region: "eu-west-1".into(),
                },
                ttl: None,
                values: vec![],
                alias: Some(Alias {
                    dns_name: "lb.elb.amazonaws.com".into(),
                    hosted_zone_id: "Z32O12XQLNTSW2".into(),
                    evaluate_target_health: true,
                }),
                health_check_id: Some("0f6b1c2e-0000-4000-8000-000000000001".into()),
            },
            Rrset {
                name: "_gi.app.example.com".into(),
                rtype: RecordType::TXT,
                routing: RecordRouting::Simple,
                ttl: Some(300),
                values: vec!["\"heritage=globalingress,owner=o,resource=n/a\"".into()],
                alias: None,
                health_check_id: None,
            },
        ];
        for r in cases {
            let mut sdk = to_route53(&r).unwrap();
            sdk.name = sdk.name.replace('*', "\\052");
            assert_eq!(from_route53(&sdk), r);
        }
    }
}
