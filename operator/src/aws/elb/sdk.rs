//! The ELBv2 calls, each one SDK request turned into the pure vocabulary of
//! [`crate::model::load_balancer`]. Every create carries its tags.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2 as elbv2;
use elbv2::types::{
    LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    Tag, TargetDescription, TargetHealthStateEnum, TargetTypeEnum,
};

use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;

use crate::aws::errors;
use crate::model::elb::{Kind, Protocol, Registered, Registration, Scheme, TargetHealthCheck};
use crate::model::load_balancer::{
    LbState, SeenLoadBalancer, SeenTargetGroup, WantedLoadBalancer, WantedTargetGroup,
};

/// DescribeTags takes at most 20 ARNs.
const TAGS_PER_CALL: usize = 20;

pub(super) fn tags_of(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, String> {
    Ok(tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect())
}

pub(super) fn protocol(p: Protocol) -> ProtocolEnum {
    match p {
        Protocol::Http => ProtocolEnum::Http,
        Protocol::Https => ProtocolEnum::Https,
        Protocol::Tcp => ProtocolEnum::Tcp,
        Protocol::Tls => ProtocolEnum::Tls,
    }
}

fn protocol_of(p: Option<&ProtocolEnum>) -> Protocol {
    match p {
        Some(ProtocolEnum::Http) => Protocol::Http,
        Some(ProtocolEnum::Https) => Protocol::Https,
        Some(ProtocolEnum::Tls) => Protocol::Tls,
        _ => Protocol::Tcp,
    }
}

fn state_of(lb: &elbv2::types::LoadBalancer) -> LbState {
    let state = lb.state();
    match state.and_then(|s| s.code()) {
        Some(LoadBalancerStateEnum::Active) => LbState::Active,
        Some(LoadBalancerStateEnum::ActiveImpaired) => LbState::Impaired,
        Some(LoadBalancerStateEnum::Failed) => LbState::Failed(
            state
                .and_then(|s| s.reason())
                .unwrap_or("no reason given")
                .to_owned(),
        ),
        _ => LbState::Provisioning,
    }
}

fn load_balancer_of(lb: &elbv2::types::LoadBalancer) -> SeenLoadBalancer {
    SeenLoadBalancer {
        arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
        name: lb.load_balancer_name().unwrap_or_default().to_owned(),
        dns_name: lb
            .dns_name()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        hosted_zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
        state: state_of(lb),
        kind: match lb.r#type() {
            Some(LoadBalancerTypeEnum::Application) => Some(Kind::Application),
            Some(LoadBalancerTypeEnum::Network) => Some(Kind::Network),
            _ => None,
        },
        scheme: match lb.scheme() {
            Some(LoadBalancerSchemeEnum::Internal) => Some(Scheme::Internal),
            Some(LoadBalancerSchemeEnum::InternetFacing) => Some(Scheme::InternetFacing),
            _ => None,
        },
        vpc_id: lb.vpc_id().unwrap_or_default().to_owned(),
        subnets: lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_owned))
            .collect(),
        security_groups: lb.security_groups().iter().cloned().collect(),
        tags: BTreeMap::new(),
    }
}

fn target_group_of(tg: &elbv2::types::TargetGroup) -> SeenTargetGroup {
    let hc_protocol = protocol_of(tg.health_check_protocol());
    SeenTargetGroup {
        arn: tg.target_group_arn().unwrap_or_default().to_owned(),
        name: tg.target_group_name().unwrap_or_default().to_owned(),
        vpc_id: tg.vpc_id().unwrap_or_default().to_owned(),
        health_check: TargetHealthCheck {
            protocol: hc_protocol,
            path: tg.health_check_path().map(str::to_owned),
            port: tg.health_check_port().unwrap_or("traffic-port").to_owned(),
            interval_seconds: tg.health_check_interval_seconds().unwrap_or_default(),
            timeout_seconds: tg.health_check_timeout_seconds().unwrap_or_default(),
            healthy_threshold: tg.healthy_threshold_count().unwrap_or_default(),
            unhealthy_threshold: tg.unhealthy_threshold_count().unwrap_or_default(),
            matcher: tg.matcher().and_then(|m| m.http_code()).map(str::to_owned),
        },
        tags: BTreeMap::new(),
    }
}

/// Every load balancer of the region (pages of 400).
pub async fn load_balancers(client: &elbv2::Client) -> Result<Vec<SeenLoadBalancer>, String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .describe_load_balancers()
            .page_size(400)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| errors::describe("DescribeLoadBalancers", &e))?;
        out.extend(page.load_balancers().iter().map(load_balancer_of));
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// One load balancer, by ARN (its state, after a create).
pub async fn load_balancer(
    client: &elbv2::Client,
    arn: &str,
) -> Result<Option<SeenLoadBalancer>, String> {
    match client
        .describe_load_balancers()
        .load_balancer_arns(arn)
        .send()
        .await
    {
        Ok(out) => Ok(out.load_balancers().first().map(load_balancer_of)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_load_balancer_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(errors::describe("DescribeLoadBalancers", &e)),
    }
}

/// Every target group of the region (pages of 400).
pub async fn target_groups(client: &elbv2::Client) -> Result<Vec<SeenTargetGroup>, String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = client
            .describe_target_groups()
            .page_size(400)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| errors::describe("DescribeTargetGroups", &e))?;
        out.extend(page.target_groups().iter().map(target_group_of));
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// The tags of `arns`, 20 per call.
pub async fn tags(
    client: &elbv2::Client,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let page = client
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| errors::describe("DescribeTags", &e))?;
        for d in page.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_owned(), tags);
        }
    }
    Ok(out)
}

/// The listeners of a load balancer.
/// The targets of a target group and their state; the second list says which are healthy.
pub async fn target_health(
    client: &elbv2::Client,
    tg: &str,
) -> Result<super::TargetHealth, String> {
    let out = client
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .map_err(|e| errors::describe("DescribeTargetHealth", &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let target = d.target()?;
            let state = d.target_health().and_then(|h| h.state());
            Some((
                Registration {
                    id: target.id().unwrap_or_default().to_owned(),
                    port: target
                        .port()
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(0),
                },
                if state == Some(&TargetHealthStateEnum::Draining) {
                    Registered::Draining
                } else {
                    Registered::Serving
                },
                state == Some(&TargetHealthStateEnum::Healthy),
            ))
        })
        .collect())
}

pub async fn create_target_group(
    client: &elbv2::Client,
    lb: &WantedLoadBalancer,
    tags: &BTreeMap<String, String>,
) -> Result<SeenTargetGroup, String> {
    let tg: &WantedTargetGroup = &lb.target_group;
    let hc = &tg.health_check;
    let out = client
        .create_target_group()
        .name(&tg.name)
        .protocol(protocol(tg.protocol))
        .port(i32::from(tg.port))
        .vpc_id(&lb.vpc_id)
        .target_type(match tg.target_kind {
            crate::model::elb::TargetKind::Ip => TargetTypeEnum::Ip,
            crate::model::elb::TargetKind::Instance => TargetTypeEnum::Instance,
        })
        .health_check_protocol(protocol(hc.protocol))
        .health_check_port(&hc.port)
        .set_health_check_path(hc.path.clone())
        .health_check_interval_seconds(hc.interval_seconds)
        .health_check_timeout_seconds(hc.timeout_seconds)
        .healthy_threshold_count(hc.healthy_threshold)
        .unhealthy_threshold_count(hc.unhealthy_threshold)
        .set_matcher(
            hc.matcher
                .as_ref()
                .map(|m| Matcher::builder().http_code(m).build()),
        )
        .set_tags(Some(tags_of(tags)?))
        .send()
        .await
        .map_err(|e| errors::describe("CreateTargetGroup", &e))?;
    let mut seen = out
        .target_groups()
        .first()
        .map(target_group_of)
        .ok_or("CreateTargetGroup: no target group in the answer")?;
    seen.tags = tags.clone();
    Ok(seen)
}

pub async fn modify_health_check(
    client: &elbv2::Client,
    arn: &str,
    hc: &TargetHealthCheck,
) -> Result<(), String> {
    client
        .modify_target_group()
        .target_group_arn(arn)
        .health_check_protocol(protocol(hc.protocol))
        .health_check_port(&hc.port)
        .set_health_check_path(hc.path.clone())
        .health_check_interval_seconds(hc.interval_seconds)
        .health_check_timeout_seconds(hc.timeout_seconds)
        .healthy_threshold_count(hc.healthy_threshold)
        .unhealthy_threshold_count(hc.unhealthy_threshold)
        .set_matcher(
            hc.matcher
                .as_ref()
                .map(|m| Matcher::builder().http_code(m).build()),
        )
        .send()
        .await
        .map_err(|e| errors::describe("ModifyTargetGroup", &e))?;
    Ok(())
}

pub async fn create_load_balancer(
    client: &elbv2::Client,
    lb: &WantedLoadBalancer,
) -> Result<SeenLoadBalancer, String> {
    let out = client
        .create_load_balancer()
        .name(&lb.name)
        .set_subnets(Some(lb.subnets.iter().cloned().collect()))
        .set_security_groups(
            (!lb.security_groups.is_empty()).then(|| lb.security_groups.iter().cloned().collect()),
        )
        .scheme(match lb.scheme {
            Scheme::Internal => LoadBalancerSchemeEnum::Internal,
            Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
        })
        .r#type(match lb.kind {
            Kind::Application => LoadBalancerTypeEnum::Application,
            Kind::Network => LoadBalancerTypeEnum::Network,
        })
        .set_tags(Some(tags_of(&lb.tags)?))
        .send()
        .await
        .map_err(|e| errors::describe("CreateLoadBalancer", &e))?;
    let mut seen = out
        .load_balancers()
        .first()
        .map(load_balancer_of)
        .ok_or("CreateLoadBalancer: no load balancer in the answer")?;
    seen.tags = lb.tags.clone();
    Ok(seen)
}

pub async fn set_subnets(
    client: &elbv2::Client,
    arn: &str,
    subnets: &BTreeSet<String>,
) -> Result<(), String> {
    client
        .set_subnets()
        .load_balancer_arn(arn)
        .set_subnets(Some(subnets.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| errors::describe("SetSubnets", &e))?;
    Ok(())
}

pub async fn set_security_groups(
    client: &elbv2::Client,
    arn: &str,
    groups: &BTreeSet<String>,
) -> Result<(), String> {
    client
        .set_security_groups()
        .load_balancer_arn(arn)
        .set_security_groups(Some(groups.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| errors::describe("SetSecurityGroups", &e))?;
    Ok(())
}

fn descriptions(targets: &[Registration]) -> Result<Vec<TargetDescription>, String> {
    Ok(targets
        .iter()
        .map(|r| {
            TargetDescription::builder()
                .id(&r.id)
                .port(i32::from(r.port))
                .build()
        })
        .collect())
}

pub async fn register(
    client: &elbv2::Client,
    tg: &str,
    targets: &[Registration],
) -> Result<(), String> {
    client
        .register_targets()
        .target_group_arn(tg)
        .set_targets(Some(descriptions(targets)?))
        .send()
        .await
        .map_err(|e| errors::describe("RegisterTargets", &e))?;
    Ok(())
}

pub async fn deregister(
    client: &elbv2::Client,
    tg: &str,
    targets: &[Registration],
) -> Result<(), String> {
    client
        .deregister_targets()
        .target_group_arn(tg)
        .set_targets(Some(descriptions(targets)?))
        .send()
        .await
        .map_err(|e| errors::describe("DeregisterTargets", &e))?;
    Ok(())
}

/// Deletes a load balancer (its listeners go with it); one that is gone already is fine.
pub async fn delete_load_balancer(client: &elbv2::Client, arn: &str) -> Result<(), String> {
    match client
        .delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_load_balancer_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(errors::describe("DeleteLoadBalancer", &e)),
    }
}

/// Deletes a target group; `ResourceInUse` (a load balancer being deleted still names it) is
/// an error, tried again at the next reconcile.
pub async fn delete_target_group(client: &elbv2::Client, arn: &str) -> Result<(), String> {
    match client
        .delete_target_group()
        .target_group_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(()),
        Err(e) => Err(errors::describe("DeleteTargetGroup", &e)),
    }
}

/// Replaces tags of `arns` (the owner of retained resources).
pub async fn add_tags(
    client: &elbv2::Client,
    arns: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<(), String> {
    for chunk in arns.chunks(TAGS_PER_CALL) {
        client
            .add_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .set_tags(Some(tags_of(tags)?))
            .send()
            .await
            .map_err(|e| errors::describe("AddTags", &e))?;
    }
    Ok(())
}
