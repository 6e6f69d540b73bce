//! The plan as a table for people: one line per record set (`globalingress plan -f`).

use super::Plan;
use crate::model::dns::{Location, RecordRouting};

/// One line per record set; a `HEALTH CHECK` column when a record names one (a reference to a
/// check of the same plan: its id is known only once it is applied).
pub fn table(plan: &Plan) -> String {
    let records = &plan.desired.records;
    let with_checks = records.iter().any(|r| r.health_check.is_some());
    let mut header = vec!["NAME", "TYPE", "ROUTING", "SET ID", "TTL", "VALUE"];
    if with_checks {
        header.push("HEALTH CHECK");
    }
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for r in records {
        let routing = match &r.routing {
            RecordRouting::Simple => "simple".to_owned(),
            RecordRouting::Weighted { weight, .. } => format!("weight={weight}"),
            RecordRouting::Geolocation { location, .. } => match location {
                Location::Default => "geo=*".to_owned(),
                Location::Continent(c) => format!("geo=continent:{c:?}"),
                Location::Country(c) => format!("geo=country:{c}"),
                Location::Subdivision {
                    country,
                    subdivision,
                } => format!("geo=subdivision:{country}-{subdivision}"),
            },
            RecordRouting::Latency { region, .. } => format!("latency={region}"),
            RecordRouting::Foreign { .. } => "foreign".to_owned(),
        };
        let value = match &r.alias {
            Some(a) => format!("ALIAS {} ({})", a.dns_name, a.hosted_zone_id),
            None => r.values.join(","),
        };
        let rtype = if r.alias.is_some() {
            "A (alias)".to_owned()
        } else {
            format!("{:?}", r.rtype)
        };
        let mut row = vec![
            r.name.clone(),
            rtype,
            routing,
            r.routing.set_id().to_owned(),
            r.ttl.map_or("-".to_owned(), |t| t.to_string()),
            value,
        ];
        if with_checks {
            row.push(
                r.health_check
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            );
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
