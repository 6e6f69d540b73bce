//! What a hosted zone holds, read from moto directly (not through a counting proxy): per name,
//! its weighted A records as (address, weight).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use aws_sdk_route53::types::RrType;

/// Name (lower case, no trailing dot) -> its weighted A records' (address, weight).
pub type Weighted = BTreeMap<String, BTreeSet<(String, i64)>>;

/// Every weighted A record of the zone.
pub async fn weighted(client: &aws_sdk_route53::Client, zone_id: &str) -> anyhow::Result<Weighted> {
    let mut out = Weighted::new();
    let mut cursor: Option<(String, RrType, Option<String>)> = None;
    let mut seen = BTreeSet::new();
    loop {
        let mut req = client.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rtype, id)) = &cursor {
            req = req
                .start_record_name(name)
                .start_record_type(rtype.clone())
                .set_start_record_identifier(id.clone());
        }
        let page = req.send().await.context("ListResourceRecordSets")?;
        for set in page.resource_record_sets() {
            let Some(weight) = set.weight() else { continue };
            if set.r#type() != &RrType::A {
                continue;
            }
            let name = set.name().trim_end_matches('.').to_ascii_lowercase();
            // A set's records can come twice: moto starts the next page at the name and type
            // (it ignores the identifier), so the set is kept as a set.
            let entry = out.entry(name).or_default();
            for r in set.resource_records() {
                entry.insert((r.value().to_owned(), weight));
            }
        }
        if !page.is_truncated() {
            return Ok(out);
        }
        let next = (
            page.next_record_name().unwrap_or_default().to_owned(),
            page.next_record_type().cloned().unwrap_or(RrType::A),
            page.next_record_identifier().map(str::to_owned),
        );
        if !seen.insert(format!("{next:?}")) {
            return Ok(out);
        }
        cursor = Some(next);
    }
}

/// How many names of `want` hold exactly the records `want` gives them.
pub fn matching(held: &Weighted, want: &Weighted) -> usize {
    want.iter()
        .filter(|(name, records)| held.get(*name) == Some(records))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sets_only() {
        let set = |v: &[(&str, i64)]| v.iter().map(|(a, w)| ((*a).to_owned(), *w)).collect();
        let want: Weighted = [
            (
                "a.test".to_owned(),
                set(&[("10.0.0.1", 1), ("10.0.0.2", 2)]),
            ),
            ("b.test".to_owned(), set(&[("10.0.0.3", 1)])),
        ]
        .into();
        let mut held = want.clone();
        assert_eq!(matching(&held, &want), 2);
        held.insert("b.test".to_owned(), set(&[("10.0.0.3", 2)]));
        assert_eq!(matching(&held, &want), 1);
        held.remove("a.test");
        assert_eq!(matching(&held, &want), 0);
    }
}
