//! Record sets as a zone holds them, the ownership registry, and the pure diff between what a
//! GlobalIngress claims and what the zone holds.
//!
//! **Ownership.** Every name a GlobalIngress publishes has a TXT registry record at a derived
//! name (`_gi.<name>`, or `_gi-wildcard.<rest>` for `*.<rest>`) saying which hub (`owner`, the
//! DNSZone's ownerId) and which GlobalIngress (`resource`) own it. The registry cannot sit at the
//! name itself: real Route 53 refuses any other record beside a CNAME (weighted CNAME sets
//! included) and Knot silently drops a CNAME added beside other data — the emulator accepts both,
//! so no test could catch it; this is why the prefix exists.
//!
//! **The rule.** A name is ours only when its registry says so. A name holding **any** record
//! (of any type: an MX, a TXT, a CAA counts) but no registry, or another owner's registry, is
//! foreign and is never changed: the claim gets a conflict. At a name we own, only the types the
//! plan publishes (A, AAAA, CNAME) are ours to replace or delete; records of other types there
//! (someone's MX or TXT beside our A) are left exactly as they are.

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::model::dns::{Key, Rrset};
use crate::model::dns::{RecordRouting, RecordType};

pub mod shared;

/// The registry record's name for `host`.
pub fn registry_name(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("*.") {
        Some(rest) => format!("_gi-wildcard.{rest}"),
        None => format!("_gi.{host}"),
    }
}

/// Who owns a name, as written in its registry record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Owner {
    /// The DNSZone's `ownerId` (one per hub).
    pub owner: String,
    /// `namespace/name` of the GlobalIngress.
    pub resource: String,
}

impl Owner {
    /// The TXT value (quoted, as Route 53 writes TXT data).
    pub fn txt(&self) -> String {
        format!(
            "\"heritage=globalingress,owner={},resource={}\"",
            self.owner, self.resource
        )
    }

    /// Parses a registry TXT value; `None` for anything we did not write.
    pub fn parse(txt: &str) -> Option<Self> {
        let inner = txt.trim().trim_matches('"');
        let mut heritage = false;
        let (mut owner, mut resource) = (None, None);
        for part in inner.split(',') {
            match part.split_once('=') {
                Some(("heritage", "globalingress")) => heritage = true,
                Some(("owner", v)) => owner = Some(v.to_owned()),
                Some(("resource", v)) => resource = Some(v.to_owned()),
                _ => {}
            }
        }
        heritage.then_some(())?;
        Some(Self {
            owner: owner?,
            resource: resource?,
        })
    }

    pub(crate) fn registry_rrset(&self, host: &str) -> Rrset {
        Rrset {
            name: registry_name(host),
            rtype: RecordType::TXT,
            routing: RecordRouting::Simple,
            ttl: Some(300),
            values: vec![self.txt()],
            alias: None,
            health_check_id: None,
        }
    }
}

/// One change to a zone. Upsert and Delete carry what the zone held, so providers without
/// Route 53's semantics (RFC 2136) can make it a prerequisite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
// A change lives only inside one batch (at most 1,000 of them); boxing the Upsert pair would
// cost an allocation per change to save a few hundred bytes briefly.
#[allow(clippy::large_enum_variant)]
pub enum Change {
    Create(Rrset),
    Upsert { old: Rrset, new: Rrset },
    Delete(Rrset),
}

impl Change {
    /// The record set the zone holds after the change (or deleted).
    pub fn rrset(&self) -> &Rrset {
        match self {
            Self::Create(r) | Self::Delete(r) | Self::Upsert { new: r, .. } => r,
        }
    }

    /// Weight in Route 53's 1,000-value limit: an UPSERT counts twice.
    pub fn batch_values(&self) -> usize {
        match self {
            Self::Upsert { new, .. } => 2 * new.size_values(),
            other => other.rrset().size_values(),
        }
    }

    /// The bytes this change adds to an RFC 2136 update: every record it names (prerequisites,
    /// deletions, additions), names in full and data in binary. Never less than what the encoder
    /// writes — which matters: hickory leaves out the records that do not fit 65,535 bytes and
    /// sends the rest (the RFC 2136 adapter's tests encode real updates against this).
    pub fn wire_bytes(&self) -> usize {
        let bare = |r: &Rrset| name_bytes(&r.name) + 10;
        let records = |r: &Rrset| {
            r.values
                .iter()
                .map(|v| bare(r) + rdata_bytes(r.rtype, v))
                .sum::<usize>()
        };
        match self {
            // Prerequisite that the name has no such RRset, then the additions.
            Self::Create(r) => bare(r) + records(r),
            // Prerequisite (the exact old RRset), a deletion of the RRset, the additions.
            Self::Upsert { old, new } => records(old) + bare(new) + records(new),
            Self::Delete(r) => records(r) + bare(r),
        }
    }

    pub fn batch_chars(&self) -> usize {
        match self {
            Self::Upsert { new, .. } => 2 * new.size_chars(),
            other => other.rrset().size_chars(),
        }
    }
}

/// The wire bytes of `name`, written in full: hickory's encoder compresses names only while it
/// has room for pointers (the first 64 names, within the first 16 KiB), so a large update
/// gains almost nothing from compression.
fn name_bytes(name: &str) -> usize {
    name.trim_end_matches('.').len() + 2
}

/// The bytes of one record's data, from its presentation value (names written in full).
fn rdata_bytes(rtype: RecordType, value: &str) -> usize {
    match rtype {
        RecordType::A => 4,
        RecordType::AAAA => 16,
        RecordType::CNAME => value.trim_end_matches('.').len() + 2,
        // Quoted text: at most 255 bytes per string, each with a length byte.
        RecordType::TXT => value.len() + value.len().div_ceil(255),
        RecordType::Other(_) => value.len(),
    }
}

/// What a GlobalIngress wants in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub owner: Owner,
    /// Hostnames it claims (empty to release everything, on deletion).
    pub names: Vec<String>,
    /// Record sets it wants, all at claimed names.
    pub desired: Vec<Rrset>,
    /// Simple record sets beside the hostnames (ACM validation CNAMEs, PrivateLink
    /// verification TXTs) that other claims of the hub may share: see [`shared`].
    pub shared: Vec<Rrset>,
    /// A desired record set without a health check keeps the one the zone's copy has (the
    /// health checks are being synced and their ids are not known yet): never detach them just
    /// because the answer is late.
    pub keep_health_checks: bool,
}

/// A name that is not this claim's to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub name: String,
    pub message: String,
}

/// The zone's record sets, by key.
pub type Zone = BTreeMap<Key, Rrset>;

/// The changes that bring `zone` to what `claim` wants, touching only names the claim owns or
/// may take (no records, no registry). Names the claim held before but no longer lists are
/// released: their records and registry entries are deleted.
pub fn diff(claim: &Claim, zone: &Zone) -> (Vec<Change>, Vec<Conflict>) {
    let owned = owned_names(zone);
    diff_with(
        claim,
        zone,
        owned.get(&claim.owner).map_or(&[], Vec::as_slice),
    )
}

/// The hostnames each owner holds, from the registry records (one scan of the zone).
pub fn owned_names(zone: &Zone) -> std::collections::HashMap<Owner, Vec<String>> {
    let mut out: std::collections::HashMap<Owner, Vec<String>> = std::collections::HashMap::new();
    for reg in zone
        .values()
        .filter(|r| r.rtype == RecordType::TXT && r.name.starts_with("_gi"))
    {
        let host = match reg.name.strip_prefix("_gi-wildcard.") {
            Some(rest) => format!("*.{rest}"),
            None => reg.name.trim_start_matches("_gi.").to_owned(),
        };
        // A shared record's registry has a value per co-owner; a hostname's has one.
        for holder in reg.values.iter().filter_map(|v| Owner::parse(v)) {
            out.entry(holder).or_default().push(host.clone());
        }
    }
    out
}

/// The record sets at one name (keys are ordered by name first, so this is a range, not a scan).
pub(crate) fn records_at<'a>(zone: &'a Zone, name: &str) -> Vec<&'a Rrset> {
    zone.range((name.to_owned(), RecordType::A, None)..)
        .take_while(|(k, _)| k.0 == name)
        .map(|(_, r)| r)
        .collect()
}

/// [`diff`] given the hostnames `claim.owner` held before (from [`owned_names`]), so a writer
/// diffing many claims scans the zone once, not once per claim.
pub fn diff_with(
    claim: &Claim,
    zone: &Zone,
    owned_before: &[String],
) -> (Vec<Change>, Vec<Conflict>) {
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    let at = |name: &str| records_at(zone, name);
    let mut names: Vec<String> = claim
        .names
        .iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();

    for name in &names {
        let registry = zone.get(&(registry_name(name), RecordType::TXT, None));
        match registry {
            Some(reg) if shared::is_shared(reg) => {
                conflicts.push(Conflict {
                    name: name.clone(),
                    message: format!(
                        "{name} holds a shared record (a certificate validation or endpoint \
                         service verification record): it is not a hostname to publish"
                    ),
                });
                continue;
            }
            Some(reg) => {
                let holder = reg.values.iter().find_map(|v| Owner::parse(v));
                if holder.as_ref() != Some(&claim.owner) {
                    conflicts.push(Conflict {
                        name: name.clone(),
                        message: match holder {
                            Some(h) if h.owner == claim.owner.owner => {
                                format!("{name} belongs to GlobalIngress {}", h.resource)
                            }
                            Some(h) => format!("{name} belongs to another hub (owner {})", h.owner),
                            None => {
                                format!("{name} has a registry record globalingress did not write")
                            }
                        },
                    });
                    continue;
                }
            }
            None => {
                if !at(name).is_empty() {
                    conflicts.push(Conflict {
                        name: name.clone(),
                        message: format!(
                            "{name} holds records no GlobalIngress owns; they are left alone"
                        ),
                    });
                    continue;
                }
                changes.push(Change::Create(claim.owner.registry_rrset(name)));
            }
        }
        let wanted: BTreeMap<Key, &Rrset> = claim
            .desired
            .iter()
            .filter(|r| &r.name == name)
            .map(|r| (r.key(), r))
            .collect();
        for (key, new) in &wanted {
            let mut new = (*new).clone();
            if claim.keep_health_checks && new.health_check_id.is_none() {
                new.health_check_id = zone.get(key).and_then(|old| old.health_check_id.clone());
            }
            match zone.get(key) {
                None => changes.push(Change::Create(new)),
                Some(old) if *old != new => changes.push(Change::Upsert {
                    old: old.clone(),
                    new,
                }),
                Some(_) => {}
            }
        }
        for old in at(name) {
            if old.is_published_kind() && !wanted.contains_key(&old.key()) {
                changes.push(Change::Delete(old.clone()));
            }
        }
    }

    conflicts.extend(shared::join(claim, zone, &mut changes));

    // Release names this resource owned but no longer claims.
    for host in owned_before {
        if names.contains(host) || claim.shared.iter().any(|r| &r.name == host) {
            continue;
        }
        if zone
            .get(&(registry_name(host), RecordType::TXT, None))
            .is_some_and(shared::is_shared)
        {
            shared::leave(&claim.owner, host, zone, &mut changes);
            continue;
        }
        for old in at(host).into_iter().filter(|r| r.is_published_kind()) {
            changes.push(Change::Delete(old.clone()));
        }
        if let Some(reg) = zone.get(&(registry_name(host), RecordType::TXT, None)) {
            changes.push(Change::Delete(reg.clone()));
        }
    }
    (changes, conflicts)
}

/// Applies successful changes to a cached copy of the zone.
pub fn apply_to(zone: &mut Zone, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Create(r) | Change::Upsert { new: r, .. } => {
                zone.insert(r.key(), r.clone());
            }
            Change::Delete(r) => {
                zone.remove(&r.key());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owner of hub `hub` (the shared-record tests use it too).
    pub(super) fn owner(resource: &str) -> Owner {
        Owner {
            owner: "hub".into(),
            resource: resource.into(),
        }
    }

    fn a(name: &str, set: &str, weight: u8, ip: &str) -> Rrset {
        Rrset {
            name: name.into(),
            rtype: RecordType::A,
            routing: RecordRouting::Weighted {
                set_id: set.into(),
                weight,
            },
            ttl: Some(30),
            values: vec![ip.into()],
            alias: None,
            health_check_id: None,
        }
    }

    fn zone_of(records: &[Rrset]) -> Zone {
        records.iter().map(|r| (r.key(), r.clone())).collect()
    }

    #[test]
    fn registry_names_and_values_round_trip() {
        assert_eq!(registry_name("App.Example.com."), "_gi.app.example.com");
        assert_eq!(
            registry_name("*.media.example.com"),
            "_gi-wildcard.media.example.com"
        );
        let o = owner("ns/app");
        assert_eq!(Owner::parse(&o.txt()), Some(o));
        assert_eq!(Owner::parse("\"v=spf1 -all\""), None);
    }

    #[test]
    fn a_free_name_gets_its_registry_and_records_in_one_diff() {
        let claim = Claim {
            owner: owner("ns/app"),
            names: vec!["app.example.com".into()],
            desired: vec![a("app.example.com", "a", 1, "192.0.2.1")],
            shared: Vec::new(),
            keep_health_checks: false,
        };
        let (changes, conflicts) = diff(&claim, &Zone::new());
        assert!(conflicts.is_empty());
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[0], Change::Create(r) if r.rtype == RecordType::TXT));
        // Applying the changes makes the next diff empty: nothing to write when in sync.
        let mut zone = Zone::new();
        apply_to(&mut zone, &changes);
        assert_eq!(diff(&claim, &zone), (vec![], vec![]));
    }

    #[test]
    fn foreign_names_are_never_touched() {
        let unowned = zone_of(&[a("app.example.com", "x", 5, "198.51.100.1")]);
        let claim = Claim {
            owner: owner("ns/app"),
            names: vec!["app.example.com".into()],
            desired: vec![a("app.example.com", "a", 1, "192.0.2.1")],
            shared: Vec::new(),
            keep_health_checks: false,
        };
        let (changes, conflicts) = diff(&claim, &unowned);
        assert!(changes.is_empty());
        assert_eq!(conflicts.len(), 1);

        let mut other = Zone::new();
        apply_to(
            &mut other,
            &[Change::Create(
                owner("ns/other").registry_rrset("app.example.com"),
            )],
        );
        let (changes, conflicts) = diff(&claim, &other);
        assert!(changes.is_empty());
        assert!(conflicts[0].message.contains("ns/other"));
    }

    #[test]
    fn changes_touch_only_what_differs_and_released_names_are_cleaned_up() {
        let o = owner("ns/app");
        let mut zone = Zone::new();
        apply_to(
            &mut zone,
            &[
                Change::Create(o.registry_rrset("app.example.com")),
                Change::Create(a("app.example.com", "a", 1, "192.0.2.1")),
                Change::Create(a("app.example.com", "b", 1, "192.0.2.2")),
                Change::Create(o.registry_rrset("old.example.com")),
                Change::Create(a("old.example.com", "a", 1, "192.0.2.1")),
                Change::Create(a("foreign.example.com", "a", 1, "203.0.113.9")),
            ],
        );
        let claim = Claim {
            owner: o,
            names: vec!["app.example.com".into()],
            desired: vec![
                a("app.example.com", "a", 0, "192.0.2.1"),
                a("app.example.com", "b", 1, "192.0.2.2"),
            ],
            shared: Vec::new(),
            keep_health_checks: false,
        };
        let (changes, conflicts) = diff(&claim, &zone);
        assert!(conflicts.is_empty());
        let summary: Vec<(String, String)> = changes
            .iter()
            .map(|c| match c {
                Change::Create(r) => ("create".into(), r.name.clone()),
                Change::Upsert { new, .. } => ("upsert".into(), new.name.clone()),
                Change::Delete(r) => ("delete".into(), r.name.clone()),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("upsert".into(), "app.example.com".into()),
                ("delete".into(), "old.example.com".into()),
                ("delete".into(), "_gi.old.example.com".into()),
            ]
        );

        // Releasing everything (deletion) removes exactly this resource's records.
        let release = Claim {
            owner: owner("ns/app"),
            names: vec![],
            desired: vec![],
            shared: Vec::new(),
            keep_health_checks: false,
        };
        let (changes, _) = diff(&release, &zone);
        apply_to(&mut zone, &changes);
        let left: Vec<&str> = zone.values().map(|r| r.name.as_str()).collect();
        assert_eq!(left, vec!["foreign.example.com"]);
    }

    #[test]
    fn upserts_count_twice_in_batch_limits() {
        let r = a("x.example.com", "a", 1, "192.0.2.1");
        assert_eq!(Change::Create(r.clone()).batch_values(), 1);
        assert_eq!(
            Change::Upsert {
                old: r.clone(),
                new: r
            }
            .batch_values(),
            2
        );
    }
}
