//! Shared records: names beside the hostnames that a claim needs, and that other claims of the
//! same hub may need with the same value. An ACM validation CNAME is one record for every
//! certificate of a domain name, in every region and for every GlobalIngress whose names
//! include it (`example.com` and `*.example.com` share one); a PrivateLink verification TXT is
//! another such record.
//!
//! The registry at `_gi.<name>` lists every co-owner, one TXT value each, marked
//! `shared=<type>`. The first claim that needs the record creates it with its registry; the next
//! joins (the registry gains its value, the record is not touched); a claim that no longer needs
//! it leaves (its value goes); the record is deleted with its registry only when the last
//! co-owner leaves. Co-owners are always of one hub, whose single zone writer serialises them.
//! A name that already holds the very same record without a registry (published by hand)
//! serves as it is and is never touched; anything else there is a conflict.

use std::collections::{BTreeMap, BTreeSet};

use super::{Change, Claim, Conflict, Owner, Rrset, Zone, records_at, registry_name};
use crate::model::dns::{RecordRouting, RecordType};

/// The marker of a shared registry value.
const SHARED: &str = "shared=";

fn type_label(t: RecordType) -> &'static str {
    match t {
        RecordType::CNAME => "CNAME",
        RecordType::TXT => "TXT",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::Other(_) => "OTHER",
    }
}

fn type_of(label: &str) -> Option<RecordType> {
    Some(match label {
        "CNAME" => RecordType::CNAME,
        "TXT" => RecordType::TXT,
        "A" => RecordType::A,
        "AAAA" => RecordType::AAAA,
        _ => return None,
    })
}

/// The registry value of `owner` as a co-owner of a shared record of type `rtype`.
pub fn shared_txt(owner: &Owner, rtype: RecordType) -> String {
    format!(
        "\"heritage=globalingress,owner={},resource={},{SHARED}{}\"",
        owner.owner,
        owner.resource,
        type_label(rtype)
    )
}

/// The type a registry value shares, `None` for an exclusive (hostname) registry value.
pub fn shared_type(txt: &str) -> Option<RecordType> {
    txt.trim()
        .trim_matches('"')
        .split(',')
        .find_map(|p| p.strip_prefix(SHARED))
        .and_then(type_of)
}

/// Whether a registry record set is that of a shared record.
pub fn is_shared(registry: &Rrset) -> bool {
    registry.values.iter().any(|v| shared_type(v).is_some())
}

fn registry_with(name: &str, values: BTreeSet<String>) -> Rrset {
    Rrset {
        name: registry_name(name),
        rtype: RecordType::TXT,
        routing: RecordRouting::Simple,
        ttl: Some(300),
        values: values.into_iter().collect(),
        alias: None,
        health_check_id: None,
    }
}

/// The changes that make `claim.shared` exist with `claim.owner` among their co-owners.
pub(super) fn join(claim: &Claim, zone: &Zone, changes: &mut Vec<Change>) -> Vec<Conflict> {
    let mut conflicts = Vec::new();
    let wanted: BTreeMap<String, &Rrset> =
        claim.shared.iter().map(|r| (r.name.clone(), r)).collect();
    for (name, want) in wanted {
        let mine = shared_txt(&claim.owner, want.rtype);
        let registry = zone.get(&(registry_name(&name), RecordType::TXT, None));
        let current = zone.get(&want.key());
        match registry {
            Some(reg) => {
                let ours = reg.values.iter().all(|v| {
                    shared_type(v).is_some()
                        && Owner::parse(v).is_some_and(|o| o.owner == claim.owner.owner)
                });
                if !ours {
                    conflicts.push(Conflict {
                        message: format!(
                            "{name} is registered to another owner or as a hostname: the {} \
                             record there is not changed",
                            type_label(want.rtype)
                        ),
                        name,
                    });
                    continue;
                }
                if !reg.values.contains(&mine) {
                    let mut values: BTreeSet<String> = reg.values.iter().cloned().collect();
                    values.insert(mine);
                    changes.push(Change::Upsert {
                        old: reg.clone(),
                        new: registry_with(&name, values),
                    });
                }
                match current {
                    None => changes.push(Change::Create(want.clone())),
                    Some(old) if old.values != want.values || old.ttl != want.ttl => {
                        changes.push(Change::Upsert {
                            old: old.clone(),
                            new: want.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
            None => {
                let at = records_at(zone, &name);
                match current {
                    // Someone published exactly this record: it serves, untouched.
                    Some(old) if old.values == want.values => {}
                    _ if !at.is_empty() => conflicts.push(Conflict {
                        message: format!(
                            "{name} holds records no GlobalIngress owns, not the {} record \
                             wanted there; they are left alone",
                            type_label(want.rtype)
                        ),
                        name,
                    }),
                    _ => {
                        changes.push(Change::Create(registry_with(&name, BTreeSet::from([mine]))));
                        changes.push(Change::Create(want.clone()));
                    }
                }
            }
        }
    }
    conflicts
}

/// The changes that take `owner` off the shared record at `name`: its registry value goes, and
/// the record with its registry when no other co-owner is left.
pub(super) fn leave(owner: &Owner, name: &str, zone: &Zone, changes: &mut Vec<Change>) {
    let Some(reg) = zone.get(&(registry_name(name), RecordType::TXT, None)) else {
        return;
    };
    let (mine, others): (Vec<&String>, Vec<&String>) = reg
        .values
        .iter()
        .partition(|v| Owner::parse(v).as_ref() == Some(owner));
    if mine.is_empty() {
        return;
    }
    if !others.is_empty() {
        changes.push(Change::Upsert {
            old: reg.clone(),
            new: registry_with(name, others.into_iter().cloned().collect()),
        });
        return;
    }
    let types: BTreeSet<RecordType> = mine.iter().filter_map(|v| shared_type(v)).collect();
    for old in records_at(zone, name) {
        if types.contains(&old.rtype) && matches!(old.routing, RecordRouting::Simple) {
            changes.push(Change::Delete(old.clone()));
        }
    }
    changes.push(Change::Delete(reg.clone()));
}

#[cfg(test)]
mod tests {
    use super::super::tests::owner;
    use super::super::{apply_to, diff};
    use super::*;

    fn cname(name: &str, value: &str) -> Rrset {
        Rrset {
            name: name.into(),
            rtype: RecordType::CNAME,
            routing: RecordRouting::Simple,
            ttl: Some(300),
            values: vec![value.into()],
            alias: None,
            health_check_id: None,
        }
    }

    fn claim(resource: &str, shared: Vec<Rrset>) -> Claim {
        Claim {
            owner: owner(resource),
            names: Vec::new(),
            desired: Vec::new(),
            shared,
            keep_health_checks: false,
        }
    }

    fn run(zone: &mut Zone, claim: &Claim) -> (usize, Vec<Conflict>) {
        let (changes, conflicts) = diff(claim, zone);
        apply_to(zone, &changes);
        (changes.len(), conflicts)
    }

    const V: &str = "_x.acm-validations.aws";

    #[test]
    fn a_shared_record_lives_while_any_co_owner_needs_it() {
        let mut zone = Zone::new();
        let record = cname("_a.example.com", V);
        let (n, c) = run(&mut zone, &claim("ns/one", vec![record.clone()]));
        assert_eq!((n, c.len()), (2, 0), "record and registry created");
        // A second GlobalIngress joins: only the registry changes.
        let (n, c) = run(&mut zone, &claim("ns/two", vec![record.clone()]));
        assert_eq!((n, c.len()), (1, 0));
        let reg = &zone[&(registry_name("_a.example.com"), RecordType::TXT, None)];
        assert_eq!(reg.values.len(), 2);
        // In sync: nothing to write.
        assert_eq!(run(&mut zone, &claim("ns/two", vec![record.clone()])).0, 0);
        // The first leaves: the record stays for the second.
        run(&mut zone, &claim("ns/one", vec![]));
        assert!(zone.contains_key(&record.key()));
        // The last leaves: record and registry go.
        run(&mut zone, &claim("ns/two", vec![]));
        assert!(zone.is_empty(), "{zone:?}");
    }

    #[test]
    fn a_hand_made_copy_serves_untouched_and_anything_else_is_a_conflict() {
        let record = cname("_a.example.com", V);
        let mut zone = Zone::new();
        apply_to(&mut zone, &[Change::Create(record.clone())]);
        let (n, c) = run(&mut zone, &claim("ns/one", vec![record.clone()]));
        assert_eq!((n, c.len()), (0, 0));
        // Leaving never deletes what we did not create.
        run(&mut zone, &claim("ns/one", vec![]));
        assert!(zone.contains_key(&record.key()));

        let mut other = Zone::new();
        apply_to(
            &mut other,
            &[Change::Create(cname(
                "_a.example.com",
                "elsewhere.example.net",
            ))],
        );
        let (n, c) = run(&mut other, &claim("ns/one", vec![record.clone()]));
        assert_eq!((n, c.len()), (0, 1));
        assert!(c[0].message.contains("left alone"), "{}", c[0].message);

        // Another hub's shared registry is not joined.
        let mut theirs = Zone::new();
        let stranger = Owner {
            owner: "other-hub".into(),
            resource: "ns/one".into(),
        };
        apply_to(
            &mut theirs,
            &[
                Change::Create(registry_with(
                    "_a.example.com",
                    BTreeSet::from([shared_txt(&stranger, RecordType::CNAME)]),
                )),
                Change::Create(record.clone()),
            ],
        );
        let (n, c) = run(&mut theirs, &claim("ns/one", vec![record]));
        assert_eq!((n, c.len()), (0, 1));
    }

    #[test]
    fn a_hostname_claim_never_takes_a_shared_name() {
        let mut zone = Zone::new();
        let record = cname("_a.example.com", V);
        run(&mut zone, &claim("ns/one", vec![record]));
        let hostname = Claim {
            owner: owner("ns/one"),
            names: vec!["_a.example.com".into()],
            desired: Vec::new(),
            shared: Vec::new(),
            keep_health_checks: false,
        };
        let (changes, conflicts) = diff(&hostname, &zone);
        assert_eq!(conflicts.len(), 1, "{changes:?}");
    }
}
