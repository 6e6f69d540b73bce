//! ACM calls, each one SDK request turned into [`crate::model::certificate`]. Certificates are
//! requested with their tags and an idempotency token in the one call, so a crash can never
//! leave an untagged certificate, and found again by their tags.
//!
//! Listing one region costs ListCertificates (pages of 1,000) plus, once per process and
//! certificate, ListTagsForCertificate (tags are remembered by ARN: they never change on ours)
//! and, for ours only, one DescribeCertificate (the validation records and expiry), repeated
//! only while a certificate is pending.

use std::collections::BTreeMap;

use acm::types::{CertificateStatus, CertificateType, DomainValidation, RenewalEligibility, Tag};
use aws_sdk_acm as acm;

use crate::aws::errors;
use crate::model::certificate::{Origin, SeenCertificate, ValidationRecord, WantedCertificate};
use crate::model::ownership::TAG_OWNER;

/// Every certificate of the region: ARN and status.
pub async fn list(client: &acm::Client) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list_certificates()
            .set_next_token(next.clone())
            .max_items(1000)
            .send()
            .await
            .map_err(|e| errors::describe("ListCertificates", &e))?;
        out.extend(
            page.certificate_summary_list()
                .iter()
                .filter_map(|c| c.certificate_arn().map(str::to_owned)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() && next.as_deref() != Some(t) => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

pub async fn tags(client: &acm::Client, arn: &str) -> Result<BTreeMap<String, String>, String> {
    let out = client
        .list_tags_for_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| errors::describe("ListTagsForCertificate", &e))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect())
}

/// Whether the tags are of any globalingress hub (only those are described).
pub fn ours(tags: &BTreeMap<String, String>) -> bool {
    tags.contains_key(TAG_OWNER)
}

fn validation(v: &DomainValidation) -> Option<ValidationRecord> {
    let r = v.resource_record()?;
    Some(ValidationRecord {
        name: r.name().to_owned(),
        value: r.value().to_owned(),
    })
}

/// DescribeCertificate; `None` when it does not exist.
pub async fn describe(
    client: &acm::Client,
    arn: &str,
    tags: BTreeMap<String, String>,
) -> Result<Option<SeenCertificate>, String> {
    let out = match client
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(errors::describe("DescribeCertificate", &e)),
    };
    let Some(c) = out.certificate() else {
        return Ok(None);
    };
    Ok(Some(SeenCertificate {
        arn: arn.to_owned(),
        domain_name: c.domain_name().unwrap_or_default().to_owned(),
        names: c.subject_alternative_names().to_vec(),
        status: c
            .status()
            .map_or("UNKNOWN", CertificateStatus::as_str)
            .to_owned(),
        origin: match c.r#type() {
            Some(CertificateType::Imported) => Origin::Imported,
            Some(CertificateType::Private) => Origin::Private,
            _ => Origin::AmazonIssued,
        },
        not_after: c.not_after().map(|t| t.secs()),
        renewal_eligible: c.renewal_eligibility() == Some(&RenewalEligibility::Eligible),
        validation: c
            .domain_validation_options()
            .iter()
            .filter_map(validation)
            .collect(),
        tags,
    }))
}

/// RequestCertificate with DNS validation, its tags and idempotency token; the ARN.
pub async fn request(client: &acm::Client, wanted: &WantedCertificate) -> Result<String, String> {
    let tags: Vec<Tag> = wanted
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("RequestCertificate: {e}"))?;
    let out = client
        .request_certificate()
        .domain_name(&wanted.domain_name)
        .set_subject_alternative_names(Some(wanted.names.clone()))
        .validation_method(acm::types::ValidationMethod::Dns)
        .idempotency_token(&wanted.idempotency_token)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| errors::describe("RequestCertificate", &e))?;
    out.certificate_arn()
        .map(str::to_owned)
        .ok_or_else(|| "RequestCertificate returned no ARN".to_owned())
}

/// DeleteCertificate; a certificate already gone is fine. ACM refuses one a listener still
/// uses (`ResourceInUseException`): the error says so and the next reconcile tries again.
pub async fn delete(client: &acm::Client, arn: &str) -> Result<(), String> {
    match client
        .delete_certificate()
        .certificate_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(errors::describe("DeleteCertificate", &e)),
    }
}

/// Re-tags a retained certificate (`deletionPolicy: Retain`).
pub async fn retag(client: &acm::Client, arn: &str, key: &str, value: &str) -> Result<(), String> {
    let tag = Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| format!("AddTagsToCertificate: {e}"))?;
    client
        .add_tags_to_certificate()
        .certificate_arn(arn)
        .tags(tag)
        .send()
        .await
        .map_err(|e| errors::describe("AddTagsToCertificate", &e))?;
    Ok(())
}
