//! The CloudWatch alarm a `Private` Route 53 health check follows: on the target group's
//! `HealthyHostCount` (minimum over a minute below 1 is ALARM), created with the load balancer,
//! tagged like it, deleted with it. An alarm with our name but not our owner tag is never
//! changed.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch as cloudwatch;
use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
use cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};

use crate::aws::errors;
use crate::model::elb::Kind;
use crate::model::load_balancer::{Owned, owned};
use crate::model::ownership::TAG_OWNER;

/// The part of an ELBv2 ARN CloudWatch names it by: `net/<name>/<id>` of a load balancer,
/// `targetgroup/<name>/<id>` of a target group.
pub fn dimension_value(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    resource
        .strip_prefix("loadbalancer/")
        .unwrap_or(resource)
        .to_owned()
}

/// The dimensions of the alarm of a target group behind a load balancer.
pub fn dimensions(lb_arn: &str, tg_arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("LoadBalancer".to_owned(), dimension_value(lb_arn)),
        ("TargetGroup".to_owned(), dimension_value(tg_arn)),
    ])
}

/// What an existing alarm of that name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    None,
    /// Ours, with these dimensions.
    Ours(BTreeMap<String, String>),
    /// Not this hub's alarm of this GlobalIngress and target (names are shortened and
    /// sanitized, so two objects could meet on one): its owner tag, if any.
    Foreign(Option<String>),
}

/// Looks the alarm up by name, with its tags; `(owner_id, global_ingress, target)` is whose it
/// must be to be ours.
pub async fn existing(
    client: &cloudwatch::Client,
    name: &str,
    (owner_id, global_ingress, target): (&str, &str, &str),
) -> Result<Existing, String> {
    let out = client
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| errors::describe("DescribeAlarms", &e))?;
    let Some(alarm) = out.metric_alarms().first() else {
        return Ok(Existing::None);
    };
    let tags = client
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().unwrap_or_default())
        .send()
        .await
        .map_err(|e| errors::describe("ListTagsForResource", &e))?;
    let tags: BTreeMap<String, String> = tags
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect();
    if owned(&tags, owner_id, global_ingress, target) != Owned::Mine {
        return Ok(Existing::Foreign(tags.get(TAG_OWNER).cloned()));
    }
    Ok(Existing::Ours(
        alarm
            .dimensions()
            .iter()
            .map(|d| {
                (
                    d.name().unwrap_or_default().to_owned(),
                    d.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    ))
}

/// Creates or updates the alarm (tags apply when it is created).
pub async fn put(
    client: &cloudwatch::Client,
    name: &str,
    kind: Kind,
    dimensions: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> Result<(), String> {
    let namespace = match kind {
        Kind::Application => "AWS/ApplicationELB",
        Kind::Network => "AWS/NetworkELB",
    };
    client
        .put_metric_alarm()
        .alarm_name(name)
        .alarm_description(
            "globalingress: the target group has no healthy target (a Route 53 health check \
             follows this alarm)",
        )
        .namespace(namespace)
        .metric_name("HealthyHostCount")
        .set_dimensions(Some(
            dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .statistic(Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        // No data from a load balancer says nothing about its targets: keep the last state.
        .treat_missing_data("missing")
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| errors::describe("PutMetricAlarm", &e))?;
    Ok(())
}

/// Deletes the alarm; one that does not exist is fine.
pub async fn delete(client: &cloudwatch::Client, name: &str) -> Result<(), String> {
    match client.delete_alarms().alarm_names(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceNotFound") => Ok(()),
        Err(e) => Err(errors::describe("DeleteAlarms", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_the_arn_resource_parts_cloudwatch_uses() {
        let d = dimensions(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/gi-web-eu-1/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/gi-web-eu-80-2/73e2d6bc24d8a067",
        );
        assert_eq!(d["LoadBalancer"], "net/gi-web-eu-1/50dc6c495c0c9188");
        assert_eq!(
            d["TargetGroup"],
            "targetgroup/gi-web-eu-80-2/73e2d6bc24d8a067"
        );
    }
}
