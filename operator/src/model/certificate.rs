//! ACM certificates as pure data: the certificate a GlobalIngress wants in each account and
//! region that holds one of its provisioned load balancers (ACM is regional), what ACM says of
//! one, and the pure decisions about them — which names a certificate covers (wildcards matched
//! as ACM does), the validation records to publish, when expiry needs a person.
//!
//! A certificate is found again by its tags: the ownership tags (with the region as the
//! target, `globalingress.io/resource=certificate`) and [`TAG_NAMES`], a hash of the names it
//! was requested for. Changed hostnames request a new certificate; the old one is deleted once
//! no listener uses it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dns::{RecordRouting, RecordType, Rrset};
use super::ownership::{hash64, tag_value, tags};

/// [`super::ownership::TAG_RESOURCE`] of a certificate.
pub const RESOURCE: &str = "certificate";
/// The hash of the names a certificate was requested for.
pub const TAG_NAMES: &str = "globalingress.io/names";
/// ACM's default quota of domain names per certificate (the API server refuses more
/// hostnames with `tls.mode: ACM`).
pub const MAX_NAMES: usize = 10;
/// TTL of validation records: ACM reads them at issue and at every renewal.
pub const VALIDATION_TTL: u32 = 300;
/// How long before `notAfter` a certificate ACM will not renew gets a Warning Event.
pub const EXPIRY_WARNING_SECONDS: i64 = 30 * 24 * 3600;

/// The certificate one GlobalIngress wants in one account and region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WantedCertificate {
    /// `<account>/<region>`: what listeners name it by ([`CertificateRef::Acm`]).
    pub key: String,
    /// A SpokeCluster in that account and region (whose credentials reach it).
    pub spoke: String,
    pub region: String,
    /// The first hostname; every hostname is a subject alternative name.
    pub domain_name: String,
    pub names: Vec<String>,
    /// [`TAG_NAMES`]: hash of the sorted names.
    pub names_hash: String,
    /// RequestCertificate's idempotency token (a retried request within the hour returns the
    /// same certificate).
    pub idempotency_token: String,
    /// Targets whose listeners use it.
    pub targets: Vec<String>,
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

/// The certificate a TLS listener uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "source", content = "value")]
pub enum CertificateRef {
    /// The GlobalIngress's ACM certificate of this `<account>/<region>`, resolved at apply.
    Acm(String),
    /// `spec.tls.certificateArn`.
    Arn(String),
}

/// The key of the certificate in `account` and `region`.
pub fn key(account: &str, region: &str) -> String {
    format!("{account}/{region}")
}

/// The names hash of [`TAG_NAMES`].
pub fn names_hash(names: &[String]) -> String {
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    sorted.sort();
    sorted.dedup();
    format!("{:016x}", hash64(sorted.join(",").as_bytes()))
}

/// The certificate `owner` (of hub `owner_id`) wants in `account`/`region` for `hostnames`.
pub fn wanted(
    owner_id: &str,
    owner: &str,
    (account, region, spoke): (&str, &str, &str),
    hostnames: &[String],
    targets: Vec<String>,
) -> WantedCertificate {
    let names: Vec<String> = hostnames
        .iter()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let hash = names_hash(&names);
    let mut tags: BTreeMap<String, String> = tags(owner_id, owner, region, RESOURCE)
        .into_iter()
        .collect();
    tags.insert(TAG_NAMES.to_owned(), hash.clone());
    let token = format!(
        "{:016x}",
        hash64(format!("{owner_id}|{owner}|{account}|{region}|{hash}").as_bytes())
    );
    WantedCertificate {
        key: key(account, region),
        spoke: spoke.to_owned(),
        region: region.to_owned(),
        domain_name: names.first().cloned().unwrap_or_default(),
        names,
        names_hash: hash,
        idempotency_token: token,
        targets,
        tags,
    }
}

/// How ACM issued a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    AmazonIssued,
    Imported,
    Private,
}

/// One DNS validation record ACM asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValidationRecord {
    pub name: String,
    pub value: String,
}

/// A certificate as ACM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCertificate {
    pub arn: String,
    pub domain_name: String,
    /// Subject alternative names (the domain name among them).
    pub names: Vec<String>,
    /// `PENDING_VALIDATION`, `ISSUED`, `FAILED`, `EXPIRED`, `VALIDATION_TIMED_OUT`, ...
    pub status: String,
    pub origin: Origin,
    /// Seconds since the epoch.
    pub not_after: Option<i64>,
    /// ACM can renew it (`RenewalEligibility: ELIGIBLE`).
    pub renewal_eligible: bool,
    pub validation: Vec<ValidationRecord>,
    pub tags: BTreeMap<String, String>,
}

impl SeenCertificate {
    pub fn issued(&self) -> bool {
        self.status == "ISSUED"
    }

    /// Whether ACM will never issue it (a new one must be requested).
    pub fn dead(&self) -> bool {
        matches!(
            self.status.as_str(),
            "FAILED" | "VALIDATION_TIMED_OUT" | "REVOKED" | "EXPIRED" | "INACTIVE"
        )
    }

    /// Whether ACM renews it by itself: only certificates it issued, while validation holds.
    pub fn renews(&self) -> bool {
        self.origin == Origin::AmazonIssued && !self.dead()
    }
}

/// Whether the certificate name `pattern` covers `host`, as ACM (and TLS clients) match: a
/// wildcard stands for exactly one label (`*.example.com` covers `a.example.com`, not
/// `example.com` nor `a.b.example.com`).
pub fn covers(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if pattern == host {
        return true;
    }
    match (pattern.strip_prefix("*."), host.split_once('.')) {
        (Some(rest), Some((label, host_rest))) => {
            !label.is_empty() && label != "*" && host_rest == rest
        }
        _ => false,
    }
}

/// The hostnames none of `names` covers.
pub fn uncovered(names: &[String], hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| !names.iter().any(|n| covers(n, h)))
        .cloned()
        .collect()
}

/// The validation CNAMEs of `seen`, as the zone writer publishes them (one per distinct name:
/// `example.com` and `*.example.com` share one).
pub fn validation_rrsets(seen: &SeenCertificate) -> Vec<Rrset> {
    let mut out: BTreeMap<String, Rrset> = BTreeMap::new();
    for v in &seen.validation {
        let name = v.name.trim_end_matches('.').to_ascii_lowercase();
        out.entry(name.clone()).or_insert_with(|| Rrset {
            name,
            rtype: RecordType::CNAME,
            routing: RecordRouting::Simple,
            ttl: Some(VALIDATION_TTL),
            values: vec![v.value.trim_end_matches('.').to_ascii_lowercase()],
            alias: None,
            health_check_id: None,
        });
    }
    out.into_values().collect()
}

/// A warning when `seen` expires within 30 days (of `now`, seconds) and ACM will not renew it.
pub fn expiry_warning(seen: &SeenCertificate, now: i64) -> Option<String> {
    let not_after = seen.not_after?;
    if seen.renews() || not_after - now > EXPIRY_WARNING_SECONDS {
        return None;
    }
    let days = (not_after - now).max(0) / 86_400;
    let why = match seen.origin {
        Origin::Imported => "it is imported: ACM never renews it",
        _ => "ACM cannot renew it (validation is failing)",
    };
    Some(format!(
        "certificate {} expires in {days} day(s) and {why}; replace it before then",
        seen.arn
    ))
}

/// Why `arn` cannot serve a load balancer in `account`/`region` whatever ACM says of it.
pub fn elsewhere(arn: &str, (account, region): (&str, &str)) -> Option<String> {
    let mut parts = arn.split(':');
    let (arn_region, arn_account) = (parts.nth(3), parts.next());
    (arn_region != Some(region) || arn_account != Some(account)).then(|| {
        format!(
            "spec.tls.certificateArn: {arn} is not in account {account} region {region}, where \
             the load balancer is (ACM certificates are regional)"
        )
    })
}

/// What is wrong with `spec.tls.certificateArn` for a load balancer in `account`/`region`
/// serving `hosts`, `None` when it may be used.
pub fn check_given(
    arn: &str,
    seen: Option<&SeenCertificate>,
    (account, region): (&str, &str),
    hosts: &[String],
) -> Option<String> {
    if let Some(message) = elsewhere(arn, (account, region)) {
        return Some(message);
    }
    let Some(seen) = seen else {
        return Some(format!(
            "spec.tls.certificateArn: {arn} does not exist in {region}"
        ));
    };
    if !seen.issued() {
        return Some(format!(
            "spec.tls.certificateArn: {arn} is {}, not ISSUED",
            seen.status
        ));
    }
    let missing = uncovered(&seen.names, hosts);
    if !missing.is_empty() {
        return Some(format!(
            "spec.tls.certificateArn: {arn} does not cover {} (it names {})",
            missing.join(", "),
            seen.names.join(", ")
        ));
    }
    None
}

/// Whether the tags of a certificate say it is `owner`'s (of hub `owner_id`) in `region`.
pub fn is_mine(tags: &BTreeMap<String, String>, owner_id: &str, owner: &str) -> bool {
    use super::ownership::{TAG_GLOBALINGRESS, TAG_OWNER, TAG_RESOURCE};
    tags.get(TAG_OWNER) == Some(&tag_value(owner_id))
        && tags.get(TAG_GLOBALINGRESS) == Some(&tag_value(owner))
        && tags.get(TAG_RESOURCE).map(String::as_str) == Some(RESOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: &str, origin: Origin, names: &[&str]) -> SeenCertificate {
        SeenCertificate {
            arn: "arn:aws:acm:eu-west-1:123456789012:certificate/x".into(),
            domain_name: names[0].into(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            status: status.into(),
            origin,
            not_after: Some(100 * 86_400),
            renewal_eligible: true,
            validation: vec![
                ValidationRecord {
                    name: "_a.Example.com.".into(),
                    value: "_v.acm-validations.aws.".into(),
                },
                ValidationRecord {
                    name: "_a.example.com.".into(),
                    value: "_v.acm-validations.aws.".into(),
                },
            ],
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn wildcards_cover_one_label_as_acm_matches() {
        assert!(covers("*.example.com", "a.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(covers("App.Example.com.", "app.example.com"));
        assert!(covers("*.example.com", "*.example.com"));
        let names = vec!["*.example.com".to_owned()];
        assert_eq!(
            uncovered(&names, &["a.example.com".into(), "example.com".into()]),
            vec!["example.com".to_owned()]
        );
    }

    #[test]
    fn one_validation_record_per_name_normalised() {
        let s = seen("PENDING_VALIDATION", Origin::AmazonIssued, &["example.com"]);
        let records = validation_rrsets(&s);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "_a.example.com");
        assert_eq!(records[0].values, vec!["_v.acm-validations.aws".to_owned()]);
    }

    #[test]
    fn the_names_hash_ignores_order_and_case_and_the_token_follows_it() {
        assert_eq!(
            names_hash(&["b.example.com".into(), "A.example.com".into()]),
            names_hash(&["a.example.com".into(), "b.example.com".into()])
        );
        let one = wanted(
            "hub",
            "ns/app",
            ("1", "eu-west-1", "s"),
            &["a.example.com".into()],
            vec![],
        );
        let two = wanted(
            "hub",
            "ns/app",
            ("1", "eu-west-1", "s"),
            &["b.example.com".into()],
            vec![],
        );
        assert_ne!(one.idempotency_token, two.idempotency_token);
        assert!(one.idempotency_token.len() <= 32);
        assert!(is_mine(&one.tags, "hub", "ns/app"));
        assert!(!is_mine(&one.tags, "other", "ns/app"));
    }

    #[test]
    fn expiry_warns_only_for_certificates_acm_will_not_renew() {
        let now = 80 * 86_400;
        assert_eq!(
            expiry_warning(
                &seen("ISSUED", Origin::AmazonIssued, &["a.example.com"]),
                now
            ),
            None
        );
        let imported = seen("ISSUED", Origin::Imported, &["a.example.com"]);
        let warning = expiry_warning(&imported, now).unwrap_or_default();
        assert!(
            warning.contains("20 day(s)") && warning.contains("imported"),
            "{warning}"
        );
        assert_eq!(expiry_warning(&imported, 10 * 86_400), None, "90 days left");
        let failing = seen("FAILED", Origin::AmazonIssued, &["a.example.com"]);
        assert!(expiry_warning(&failing, now).is_some());
    }

    #[test]
    fn a_given_certificate_must_be_here_issued_and_cover_every_hostname() {
        let arn = "arn:aws:acm:eu-west-1:123456789012:certificate/x";
        let here = ("123456789012", "eu-west-1");
        let hosts = vec!["a.example.com".to_owned(), "b.example.com".to_owned()];
        let ok = seen("ISSUED", Origin::AmazonIssued, &["*.example.com"]);
        assert_eq!(check_given(arn, Some(&ok), here, &hosts), None);
        let elsewhere = check_given(arn, Some(&ok), ("123456789012", "us-east-1"), &hosts);
        assert!(elsewhere.is_some_and(|m| m.contains("regional")));
        assert!(check_given(arn, None, here, &hosts).is_some_and(|m| m.contains("exist")));
        let pending = seen(
            "PENDING_VALIDATION",
            Origin::AmazonIssued,
            &["*.example.com"],
        );
        assert!(check_given(arn, Some(&pending), here, &hosts).is_some());
        let narrow = seen("ISSUED", Origin::AmazonIssued, &["a.example.com"]);
        let message = check_given(arn, Some(&narrow), here, &hosts).unwrap_or_default();
        assert!(
            message.starts_with("spec.tls.certificateArn") && message.contains("b.example.com"),
            "{message}"
        );
    }
}
