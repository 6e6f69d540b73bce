//! The plan as a table for people: one line per record set, then one per load balancer to
//! provision (`globalingress plan -f`).

use super::Plan;
use crate::model::certificate::CertificateRef;
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
    let mut out = if records.is_empty() {
        "no records\n".to_owned()
    } else {
        aligned(rows)
    };
    let lbs = &plan.desired.load_balancers;
    if !lbs.is_empty() {
        let mut rows: Vec<Vec<String>> = vec![
            [
                "LOAD BALANCER",
                "TARGET",
                "TYPE",
                "SCHEME",
                "LISTENER",
                "TARGET GROUP",
                "TARGETS",
                "DNS NAME",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        ];
        for lb in lbs {
            let dns = plan
                .targets
                .iter()
                .find(|(name, _)| *name == lb.target)
                .and_then(|(_, o)| match &o.endpoint {
                    Some(crate::model::target::Endpoint::Hostname { name, .. }) => {
                        Some(name.clone())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| format!("(dns name of {}, known once created)", lb.name));
            rows.push(vec![
                lb.name.clone(),
                lb.target.clone(),
                lb.kind.as_str().to_owned(),
                lb.scheme.as_str().to_owned(),
                match (&lb.listener.certificate, &lb.redirect) {
                    (None, _) => format!("{}:{}", lb.listener.protocol.as_str(), lb.listener.port),
                    (Some(c), r) => format!(
                        "{}:{} ({}){}",
                        lb.listener.protocol.as_str(),
                        lb.listener.port,
                        match c {
                            CertificateRef::Acm(key) => format!("ACM {key}"),
                            CertificateRef::Arn(arn) => arn.clone(),
                        },
                        r.map_or_else(String::new, |r| format!(", HTTP:{} redirects", r.port))
                    ),
                },
                format!(
                    "{} ({} {})",
                    lb.target_group.name,
                    lb.target_group.target_kind.as_str(),
                    lb.target_group.protocol.as_str()
                ),
                lb.target_group
                    .registrations
                    .as_ref()
                    .map_or_else(|| "(from the spoke)".to_owned(), |r| r.len().to_string()),
                dns,
            ]);
        }
        out.push_str(&aligned(rows));
        out.push_str(&certificates(plan));
        out.push_str(&endpoint_services(plan));
        for target in &plan.pending_targets {
            if let Some(lb) = lbs.iter().find(|lb| lb.target == *target) {
                out.push_str(&format!(
                    "target {target}: its records wait for the DNS name of load balancer {}\n",
                    lb.name
                ));
            }
        }
    }
    out
}

/// The ACM certificates, one row each.
fn certificates(plan: &Plan) -> String {
    let certs = &plan.desired.certificates;
    if certs.is_empty() {
        return String::new();
    }
    let mut rows = vec![
        [
            "CERTIFICATE (ACM)",
            "REGION",
            "NAMES",
            "VALIDATION",
            "LISTENERS OF",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for c in certs {
        rows.push(vec![
            c.key.clone(),
            c.region.clone(),
            c.names.join(","),
            "DNS (CNAMEs in this zone)".to_owned(),
            c.targets.join(","),
        ]);
    }
    aligned(rows)
}

/// The PrivateLink endpoint services, one row each, and their consumers' endpoints.
fn endpoint_services(plan: &Plan) -> String {
    let services = &plan.desired.endpoint_services;
    if services.is_empty() {
        return String::new();
    }
    let mut rows = vec![
        [
            "ENDPOINT SERVICE OF",
            "NLB",
            "ACCEPTANCE",
            "PRINCIPALS",
            "PRIVATE DNS",
            "CONSUMER ENDPOINTS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for s in services {
        rows.push(vec![
            s.target.clone(),
            s.load_balancer.clone(),
            if s.acceptance_required {
                "required".to_owned()
            } else {
                "automatic".to_owned()
            },
            if s.allowed_principals.is_empty() {
                "(none)".to_owned()
            } else {
                s.allowed_principals
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            },
            s.private_dns_name
                .clone()
                .map_or_else(|| "-".to_owned(), |n| format!("{n} (TXT verified here)")),
            s.consumers
                .iter()
                .map(|c| match &c.account_id {
                    Some(a) => format!("{}@{a}", c.vpc_id),
                    None => c.vpc_id.clone(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    aligned(rows)
}

/// Rows as columns padded to their widest cell.
fn aligned(rows: Vec<Vec<String>>) -> String {
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
