//! RFC 2136 adapter of [`ZoneProvider`]: AXFR to list, one TSIG-signed update per batch with
//! prerequisites (so a record somebody else changed since we listed is not overwritten: the
//! server refuses the whole update), then a direct authoritative query until the answer shows the
//! change.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use hickory_net::proto::rr::rdata::{A, AAAA, CNAME, TXT};

use super::provider::{Applied, ProviderError, Submitted, ZoneProvider};
use super::query;
use super::records::{Change, Rrset};
use super::rfc2136::{Update, UpdateClient};
use super::tsig::TsigKey;
use super::{Name, RData, Record, RecordType as DnsType};
use crate::model::dns::{ProviderKind, RecordRouting, RecordType};

const TIMEOUT: Duration = Duration::from_secs(5);
/// The changes of one update, in bytes ([`Change::wire_bytes`]).
const MAX_UPDATE_BYTES: usize = 64_000;
/// How long to wait for the server's answer to show an applied update.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// One zone on one RFC 2136 server.
#[derive(Debug, Clone)]
pub struct Rfc2136Zone {
    server: SocketAddr,
    zone: Name,
    key: TsigKey,
    /// Local address of the connections (servers that allow updates by source address).
    bind: Option<IpAddr>,
}

impl Rfc2136Zone {
    pub fn new(
        server: SocketAddr,
        domain: &str,
        key: TsigKey,
        bind: Option<IpAddr>,
    ) -> Result<Self, ProviderError> {
        let zone = Name::from_str(&format!("{}.", domain.trim_end_matches('.'))).map_err(|e| {
            ProviderError::Refused {
                message: format!("invalid zone {domain}: {e}"),
            }
        })?;
        Ok(Self {
            server,
            zone,
            key,
            bind,
        })
    }

    async fn client(&self) -> Result<UpdateClient, ProviderError> {
        UpdateClient::connect(self.server, &self.key, TIMEOUT, self.bind)
            .await
            .map_err(|e| ProviderError::Unavailable {
                message: e.to_string(),
            })
    }

    async fn list_all(&self) -> Result<Vec<Rrset>, ProviderError> {
        let records = self
            .client()
            .await?
            .transfer(&self.zone)
            .await
            .map_err(|e| ProviderError::Unavailable {
                message: format!("AXFR of {}: {e}", self.zone),
            })?;
        let mut sets: BTreeMap<(String, RecordType), Rrset> = BTreeMap::new();
        for r in records {
            // Types we never write are kept too (they make their name taken), by type code.
            let (rtype, value) = value_of(&r).unwrap_or_else(|| {
                (
                    RecordType::Other(u16::from(r.record_type())),
                    r.data.to_string(),
                )
            });
            let name = r
                .name
                .to_string()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let set = sets.entry((name.clone(), rtype)).or_insert_with(|| Rrset {
                name,
                rtype,
                routing: RecordRouting::Simple,
                ttl: Some(r.ttl),
                values: Vec::new(),
                alias: None,
                health_check_id: None,
            });
            set.values.push(value);
        }
        Ok(sets
            .into_values()
            .map(|mut s| {
                s.values.sort();
                s.values.dedup();
                s
            })
            .collect())
    }

    async fn apply_changes(&self, changes: &[Change]) -> Result<Submitted, ProviderError> {
        let update = update_of(&self.zone, changes)?;
        self.client()
            .await?
            .send(update)
            .await
            .map_err(|e| match e.response_code() {
                // A failed prerequisite or a refused record: this batch is at fault.
                Some(_) => ProviderError::Refused {
                    message: e.to_string(),
                },
                None => ProviderError::Unavailable {
                    message: e.to_string(),
                },
            })?;
        let in_sync_at = Some(jiff::Timestamp::now());
        self.wait_for_answer(changes).await?;
        Ok(Submitted {
            change_id: None,
            applied: Applied {
                in_sync_at,
                answer_seen_at: Some(jiff::Timestamp::now()),
            },
        })
    }

    /// Queries the server directly until the last changed name answers with its new values.
    /// One name says it for the whole batch: the server applies an update as one transaction
    /// and serves either all of it or none (asking for each of 1,000 names took a second before
    /// the next batch could go).
    async fn wait_for_answer(&self, changes: &[Change]) -> Result<(), ProviderError> {
        let started = Instant::now();
        if let Some(change) = changes.last() {
            let (rrset, expected) = match change {
                Change::Delete(r) => (r, Vec::new()),
                Change::Create(r) | Change::Upsert { new: r, .. } => (r, r.values.clone()),
            };
            let name = name_of(rrset)?;
            loop {
                let answer =
                    query::authoritative(self.server, &name, dns_type(rrset.rtype), TIMEOUT)
                        .await
                        .map_err(|e| ProviderError::Unavailable {
                            message: e.to_string(),
                        })?;
                let mut seen: Vec<String> = answer
                    .records
                    .iter()
                    .filter_map(|r| value_of(r).map(|v| v.1))
                    .collect();
                seen.sort();
                if seen == expected {
                    break;
                }
                if started.elapsed() > ANSWER_WAIT {
                    return Err(ProviderError::Unavailable {
                        message: format!(
                            "{} {:?} answers {seen:?}, expected {expected:?} after {ANSWER_WAIT:?}",
                            rrset.name, rrset.rtype
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

impl ZoneProvider for Rfc2136Zone {
    /// A DNS message's 65,535 bytes less room for the header, the zone section and the TSIG
    /// record (about 200 bytes with a long key name).
    fn max_batch_bytes(&self) -> usize {
        MAX_UPDATE_BYTES
    }

    fn change_bytes(&self, change: &Change) -> usize {
        change.wire_bytes()
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Rfc2136
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>> {
        self.list_all().boxed()
    }

    /// An update is in sync once the primary accepted it and answers with it (checked before
    /// `submit` returns).
    fn submit<'a>(
        &'a self,
        changes: &'a [Change],
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>> {
        self.apply_changes(changes).boxed()
    }

    fn in_sync<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<bool, ProviderError>> {
        async { Ok(true) }.boxed()
    }
}

/// The update that makes `changes` in `zone`, each with its prerequisites.
fn update_of(zone: &Name, changes: &[Change]) -> Result<Update, ProviderError> {
    let mut update = Update::new(zone.clone());
    for change in changes {
        match change {
            Change::Create(new) => {
                update.require_absent(name_of(new)?, dns_type(new.rtype));
                for r in records_of(new)? {
                    update.add(r);
                }
            }
            Change::Upsert { old, new } => {
                update.require_exactly(records_of(old)?);
                update.delete_rrset(name_of(new)?, dns_type(new.rtype));
                for r in records_of(new)? {
                    update.add(r);
                }
            }
            Change::Delete(old) => {
                update.require_exactly(records_of(old)?);
                update.delete_rrset(name_of(old)?, dns_type(old.rtype));
            }
        }
    }
    Ok(update)
}

fn dns_type(t: RecordType) -> DnsType {
    match t {
        RecordType::A => DnsType::A,
        RecordType::AAAA => DnsType::AAAA,
        RecordType::CNAME => DnsType::CNAME,
        RecordType::TXT => DnsType::TXT,
        RecordType::Other(code) => DnsType::from(code),
    }
}

/// The type and presentation value of a record we manage (TXT quoted, names without the dot).
fn value_of(r: &Record) -> Option<(RecordType, String)> {
    Some(match &r.data {
        RData::A(a) => (RecordType::A, a.0.to_string()),
        RData::AAAA(a) => (RecordType::AAAA, a.0.to_string()),
        RData::CNAME(c) => (
            RecordType::CNAME,
            c.0.to_string().trim_end_matches('.').to_ascii_lowercase(),
        ),
        RData::TXT(t) => {
            let text: String = t
                .txt_data
                .iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect();
            (RecordType::TXT, format!("\"{text}\""))
        }
        _ => return None,
    })
}

fn invalid(message: String) -> ProviderError {
    ProviderError::Refused { message }
}

fn name_of(r: &Rrset) -> Result<Name, ProviderError> {
    Name::from_str(&format!("{}.", r.name))
        .map_err(|e| invalid(format!("invalid name {}: {e}", r.name)))
}

fn records_of(r: &Rrset) -> Result<Vec<Record>, ProviderError> {
    let name = name_of(r)?;
    let ttl = r.ttl.unwrap_or(300);
    r.values
        .iter()
        .map(|v| {
            let data = match r.rtype {
                RecordType::A | RecordType::AAAA => match v.parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) => RData::A(A(ip)),
                    Ok(IpAddr::V6(ip)) => RData::AAAA(AAAA(ip)),
                    Err(e) => return Err(invalid(format!("{v}: {e}"))),
                },
                RecordType::CNAME => RData::CNAME(CNAME(
                    Name::from_str(&format!("{}.", v.trim_end_matches('.')))
                        .map_err(|e| invalid(format!("{v}: {e}")))?,
                )),
                RecordType::TXT => RData::TXT(TXT::new(vec![v.trim_matches('"').to_owned()])),
                RecordType::Other(code) => {
                    return Err(invalid(format!(
                        "{}: globalingress does not write records of type {code}",
                        r.name
                    )));
                }
            };
            Ok(Record::from_rdata(name.clone(), ttl, data))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::records::Owner;
    use crate::dns::zone_writer::{Config, split_by_limits};

    const ZONE: &str = "bench-knot-1000-4242.example.test";
    /// The TSIG record a signed update adds (name, algorithm, times, a 32-byte MAC): at most.
    const TSIG_BYTES: usize = 200;

    fn a(name: &str, ips: &[&str]) -> Rrset {
        Rrset {
            name: name.into(),
            rtype: RecordType::A,
            routing: RecordRouting::Simple,
            ttl: Some(5),
            values: ips.iter().map(|s| (*s).to_owned()).collect(),
            alias: None,
            health_check_id: None,
        }
    }

    /// Splits `changes` as the writer does and encodes every batch as the update sent for it;
    /// returns each batch's encoded size.
    fn encoded_batches(changes: Vec<Change>) -> Vec<usize> {
        let zone = Name::from_str(&format!("{ZONE}.")).unwrap();
        let bytes = |c: &Change| c.wire_bytes();
        let pending = changes.into_iter().enumerate().collect();
        split_by_limits(pending, &Config::default(), (MAX_UPDATE_BYTES, &bytes))
            .into_iter()
            .map(|batch| {
                let changes: Vec<Change> = batch.into_iter().map(|(_, c)| c).collect();
                let estimate: usize = changes.iter().map(Change::wire_bytes).sum();
                let wire = update_of(&zone, &changes)
                    .unwrap()
                    .into_message()
                    .to_vec()
                    .unwrap()
                    .len();
                // The header and the zone section: 12 bytes, the zone's name, type and class.
                let overhead = 12 + ZONE.len() + 2 + 4;
                assert!(
                    wire <= estimate + overhead,
                    "the estimate undercounts: {estimate} + {overhead} < {wire} bytes"
                );
                assert!(
                    wire + TSIG_BYTES <= 65_535,
                    "{wire} bytes do not fit a message"
                );
                wire
            })
            .collect()
    }

    #[test]
    fn a_failover_of_1000_names_fits_four_updates_and_every_update_one_message() {
        // Every name loses one of its two addresses.
        let failover: Vec<Change> = (0..1000)
            .map(|i| {
                let name = format!("gi{i}.{ZONE}");
                Change::Upsert {
                    old: a(&name, &["127.0.0.2", "127.0.0.3"]),
                    new: a(&name, &["127.0.0.3"]),
                }
            })
            .collect();
        let sizes = encoded_batches(failover);
        assert!(sizes.len() <= 4, "{sizes:?}");
        // A cold publish: a registry TXT and the records of 1,000 names, more than one message.
        let owner = Owner {
            owner: "bench".into(),
            resource: "ns/gi".into(),
        };
        let cold: Vec<Change> = (0..1000)
            .flat_map(|i| {
                let name = format!("gi{i}.{ZONE}");
                [
                    Change::Create(owner.registry_rrset(&name)),
                    Change::Create(a(&name, &["127.0.0.2", "127.0.0.3"])),
                ]
            })
            .collect();
        let sizes = encoded_batches(cold);
        assert!(sizes.len() >= 2, "{sizes:?}");
        // A name outside the zone is written in full.
        let outside = Change::Create(a("elsewhere.example.org", &["192.0.2.1"]));
        assert_eq!(encoded_batches(vec![outside]).len(), 1);
    }
}
