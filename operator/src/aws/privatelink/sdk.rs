//! The EC2 calls of PrivateLink, each one SDK request turned into
//! [`crate::model::privatelink`]. The only module that speaks EC2 (the crate is large; the
//! architecture test keeps it here). Every create carries its tags and a client token.

use std::collections::BTreeMap;

use aws_sdk_ec2 as ec2;
use ec2::types::{Filter, ResourceType, Tag, TagSpecification, VpcEndpointType};

use crate::aws::errors;
use crate::model::privatelink::{
    Connection, SeenEndpoint, SeenEndpointService, ServiceChanges, Verification, WantedEndpoint,
    WantedEndpointService,
};

fn tag_spec(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn service_of(c: &ec2::types::ServiceConfiguration) -> SeenEndpointService {
    SeenEndpointService {
        id: c.service_id().unwrap_or_default().to_owned(),
        name: c.service_name().unwrap_or_default().to_owned(),
        load_balancers: c.network_load_balancer_arns().iter().cloned().collect(),
        acceptance_required: c.acceptance_required().unwrap_or(true),
        private_dns_name: c.private_dns_name().map(str::to_owned),
        verification: c.private_dns_name_configuration().map(|v| Verification {
            state: v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            name: v.name().unwrap_or_default().to_owned(),
            value: v.value().unwrap_or_default().to_owned(),
        }),
        state: c
            .service_state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        tags: tags_of(c.tags()),
    }
}

/// Every endpoint service of the region (ours are told by their tags).
pub async fn services(client: &ec2::Client) -> Result<Vec<SeenEndpointService>, String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .describe_vpc_endpoint_service_configurations()
            .set_next_token(next.clone())
            .max_results(1000)
            .send()
            .await
            .map_err(|e| errors::describe("DescribeVpcEndpointServiceConfigurations", &e))?;
        out.extend(page.service_configurations().iter().map(service_of));
        match page.next_token() {
            Some(t) if !t.is_empty() && next.as_deref() != Some(t) => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

pub async fn create_service(
    client: &ec2::Client,
    wanted: &WantedEndpointService,
    lb_arn: &str,
    token: &str,
) -> Result<SeenEndpointService, String> {
    let out = client
        .create_vpc_endpoint_service_configuration()
        .network_load_balancer_arns(lb_arn)
        .acceptance_required(wanted.acceptance_required)
        .set_private_dns_name(wanted.private_dns_name.clone())
        .client_token(token)
        .tag_specifications(tag_spec(ResourceType::VpcEndpointService, &wanted.tags))
        .send()
        .await
        .map_err(|e| errors::describe("CreateVpcEndpointServiceConfiguration", &e))?;
    let mut seen = out
        .service_configuration()
        .map(service_of)
        .ok_or_else(|| "CreateVpcEndpointServiceConfiguration returned no service".to_owned())?;
    if seen.tags.is_empty() {
        seen.tags = wanted.tags.clone();
    }
    Ok(seen)
}

pub async fn modify_service(
    client: &ec2::Client,
    id: &str,
    changes: &ServiceChanges,
) -> Result<(), String> {
    let mut req = client
        .modify_vpc_endpoint_service_configuration()
        .service_id(id)
        .set_acceptance_required(changes.acceptance_required)
        .set_add_network_load_balancer_arns(
            (!changes.add_load_balancers.is_empty()).then(|| changes.add_load_balancers.clone()),
        )
        .set_remove_network_load_balancer_arns(
            (!changes.remove_load_balancers.is_empty())
                .then(|| changes.remove_load_balancers.clone()),
        );
    match &changes.private_dns_name {
        Some(Some(name)) => req = req.private_dns_name(name),
        Some(None) => req = req.remove_private_dns_name(true),
        None => {}
    }
    req.send()
        .await
        .map_err(|e| errors::describe("ModifyVpcEndpointServiceConfiguration", &e))?;
    Ok(())
}

pub async fn permissions(client: &ec2::Client, id: &str) -> Result<Vec<String>, String> {
    let out = client
        .describe_vpc_endpoint_service_permissions()
        .service_id(id)
        .send()
        .await
        .map_err(|e| errors::describe("DescribeVpcEndpointServicePermissions", &e))?;
    Ok(out
        .allowed_principals()
        .iter()
        .filter_map(|p| p.principal().map(str::to_owned))
        .collect())
}

pub async fn modify_permissions(
    client: &ec2::Client,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Result<(), String> {
    client
        .modify_vpc_endpoint_service_permissions()
        .service_id(id)
        .set_add_allowed_principals((!add.is_empty()).then(|| add.to_vec()))
        .set_remove_allowed_principals((!remove.is_empty()).then(|| remove.to_vec()))
        .send()
        .await
        .map_err(|e| errors::describe("ModifyVpcEndpointServicePermissions", &e))?;
    Ok(())
}

pub async fn start_verification(client: &ec2::Client, id: &str) -> Result<(), String> {
    client
        .start_vpc_endpoint_service_private_dns_verification()
        .service_id(id)
        .send()
        .await
        .map_err(|e| errors::describe("StartVpcEndpointServicePrivateDnsVerification", &e))?;
    Ok(())
}

pub async fn delete_service(client: &ec2::Client, id: &str) -> Result<(), String> {
    let out = client
        .delete_vpc_endpoint_service_configurations()
        .service_ids(id)
        .send()
        .await
        .map_err(|e| errors::describe("DeleteVpcEndpointServiceConfigurations", &e))?;
    match out.unsuccessful().first().and_then(|u| u.error()) {
        Some(e) if e.code() != Some("InvalidVpcEndpointService.NotFound") => Err(format!(
            "DeleteVpcEndpointServiceConfigurations: {}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

pub async fn connections(client: &ec2::Client, id: &str) -> Result<Vec<Connection>, String> {
    let out = client
        .describe_vpc_endpoint_connections()
        .filters(Filter::builder().name("service-id").values(id).build())
        .send()
        .await
        .map_err(|e| errors::describe("DescribeVpcEndpointConnections", &e))?;
    Ok(out
        .vpc_endpoint_connections()
        .iter()
        .map(|c| Connection {
            endpoint_id: c.vpc_endpoint_id().unwrap_or_default().to_owned(),
            owner: c.vpc_endpoint_owner().unwrap_or_default().to_owned(),
            state: c
                .vpc_endpoint_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        })
        .collect())
}

pub async fn accept(client: &ec2::Client, id: &str, endpoints: &[String]) -> Result<(), String> {
    client
        .accept_vpc_endpoint_connections()
        .service_id(id)
        .set_vpc_endpoint_ids(Some(endpoints.to_vec()))
        .send()
        .await
        .map_err(|e| errors::describe("AcceptVpcEndpointConnections", &e))?;
    Ok(())
}

pub async fn reject(client: &ec2::Client, id: &str, endpoints: &[String]) -> Result<(), String> {
    client
        .reject_vpc_endpoint_connections()
        .service_id(id)
        .set_vpc_endpoint_ids(Some(endpoints.to_vec()))
        .send()
        .await
        .map_err(|e| errors::describe("RejectVpcEndpointConnections", &e))?;
    Ok(())
}

fn endpoint_of(e: &ec2::types::VpcEndpoint) -> SeenEndpoint {
    SeenEndpoint {
        id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
        vpc_id: e.vpc_id().unwrap_or_default().to_owned(),
        service_name: e.service_name().unwrap_or_default().to_owned(),
        state: e.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        subnets: e.subnet_ids().iter().cloned().collect(),
        security_groups: e
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
        dns_name: e
            .dns_entries()
            .iter()
            .find_map(|d| d.dns_name().map(str::to_owned)),
        tags: tags_of(e.tags()),
    }
}

/// The interface endpoints of the region tagged by `owner_id` (the hub).
pub async fn endpoints(client: &ec2::Client, owner_id: &str) -> Result<Vec<SeenEndpoint>, String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .describe_vpc_endpoints()
            .filters(
                Filter::builder()
                    .name(format!("tag:{}", crate::model::ownership::TAG_OWNER))
                    .values(crate::model::ownership::tag_value(owner_id))
                    .build(),
            )
            .set_next_token(next.clone())
            .max_results(1000)
            .send()
            .await
            .map_err(|e| errors::describe("DescribeVpcEndpoints", &e))?;
        out.extend(page.vpc_endpoints().iter().map(endpoint_of));
        match page.next_token() {
            Some(t) if !t.is_empty() && next.as_deref() != Some(t) => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(out)
}

pub async fn create_endpoint(
    client: &ec2::Client,
    service_name: &str,
    wanted: &WantedEndpoint,
    token: &str,
) -> Result<SeenEndpoint, String> {
    let out = client
        .create_vpc_endpoint()
        .vpc_endpoint_type(VpcEndpointType::Interface)
        .vpc_id(&wanted.vpc_id)
        .service_name(service_name)
        .set_subnet_ids(Some(wanted.subnets.iter().cloned().collect()))
        .set_security_group_ids(
            (!wanted.security_groups.is_empty())
                .then(|| wanted.security_groups.iter().cloned().collect()),
        )
        .client_token(token)
        .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &wanted.tags))
        .send()
        .await
        .map_err(|e| errors::describe("CreateVpcEndpoint", &e))?;
    let mut seen = out
        .vpc_endpoint()
        .map(endpoint_of)
        .ok_or_else(|| "CreateVpcEndpoint returned no endpoint".to_owned())?;
    if seen.tags.is_empty() {
        seen.tags = wanted.tags.clone();
    }
    Ok(seen)
}

pub async fn delete_endpoint(client: &ec2::Client, id: &str) -> Result<(), String> {
    let out = client
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map_err(|e| errors::describe("DeleteVpcEndpoints", &e))?;
    match out.unsuccessful().first().and_then(|u| u.error()) {
        Some(e) if e.code() != Some("InvalidVpcEndpoint.NotFound") => Err(format!(
            "DeleteVpcEndpoints: {}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

pub async fn retag(
    client: &ec2::Client,
    ids: &[String],
    key: &str,
    value: &str,
) -> Result<(), String> {
    client
        .create_tags()
        .set_resources(Some(ids.to_vec()))
        .tags(Tag::builder().key(key).value(value).build())
        .send()
        .await
        .map_err(|e| errors::describe("CreateTags", &e))?;
    Ok(())
}

pub async fn subnet_cidrs(
    client: &ec2::Client,
    ids: &[String],
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let out = client
        .describe_subnets()
        .set_subnet_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| errors::describe("DescribeSubnets", &e))?;
    Ok(out
        .subnets()
        .iter()
        .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.cidr_block()?.to_owned())))
        .collect())
}
