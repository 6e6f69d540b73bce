//! PrivateLink's narrow port: the EC2 calls the endpoint-service and endpoint deployers make,
//! as a trait. [`Ec2`] is the SDK adapter ([`sdk`], the one module that speaks EC2); unit
//! tests drive the deployers with the in-memory [`fake`] — moto has no
//! DescribeVpcEndpointConnections nor Accept/RejectVpcEndpointConnections (HTTP 500), so
//! connection handling is tested there, everything else against moto too.

pub mod sdk;

#[cfg(test)]
pub mod fake;

use futures::future::BoxFuture;

use crate::model::privatelink::{
    Connection, SeenEndpoint, SeenEndpointService, ServiceChanges, WantedEndpoint,
    WantedEndpointService,
};

/// The PrivateLink calls of one (account, region, role).
pub trait PrivateLinkApi: Send + Sync + std::fmt::Debug {
    /// Every endpoint service of the region.
    fn services(&self) -> BoxFuture<'_, Result<Vec<SeenEndpointService>, String>>;
    fn create_service<'a>(
        &'a self,
        wanted: &'a WantedEndpointService,
        lb_arn: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpointService, String>>;
    fn modify_service<'a>(
        &'a self,
        id: &'a str,
        changes: &'a ServiceChanges,
    ) -> BoxFuture<'a, Result<(), String>>;
    fn permissions<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>>;
    fn modify_permissions<'a>(
        &'a self,
        id: &'a str,
        add: &'a [String],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
    fn start_verification<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>>;
    fn delete_service<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>>;
    fn connections<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Connection>, String>>;
    fn accept<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
    fn reject<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The interface endpoints of the region tagged by hub `owner_id`.
    fn endpoints<'a>(
        &'a self,
        owner_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SeenEndpoint>, String>>;
    fn create_endpoint<'a>(
        &'a self,
        service_name: &'a str,
        wanted: &'a WantedEndpoint,
        token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpoint, String>>;
    fn delete_endpoint<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Sets tag `key` to `value` on the resources `ids` (EC2 CreateTags).
    fn retag<'a>(
        &'a self,
        ids: &'a [String],
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// The IPv4 CIDR of each of the subnets `ids` (EC2 DescribeSubnets): the only other EC2 read,
    /// for the backend NetworkPolicy of a provisioned load balancer.
    fn subnet_cidrs<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, String>, String>>;
}

/// The SDK adapter.
#[derive(Debug, Clone)]
pub struct Ec2 {
    pub client: aws_sdk_ec2::Client,
}

impl PrivateLinkApi for Ec2 {
    fn services(&self) -> BoxFuture<'_, Result<Vec<SeenEndpointService>, String>> {
        Box::pin(sdk::services(&self.client))
    }
    fn create_service<'a>(
        &'a self,
        wanted: &'a WantedEndpointService,
        lb_arn: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpointService, String>> {
        Box::pin(sdk::create_service(&self.client, wanted, lb_arn, token))
    }
    fn modify_service<'a>(
        &'a self,
        id: &'a str,
        changes: &'a ServiceChanges,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::modify_service(&self.client, id, changes))
    }
    fn permissions<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(sdk::permissions(&self.client, id))
    }
    fn modify_permissions<'a>(
        &'a self,
        id: &'a str,
        add: &'a [String],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::modify_permissions(&self.client, id, add, remove))
    }
    fn start_verification<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::start_verification(&self.client, id))
    }
    fn delete_service<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::delete_service(&self.client, id))
    }
    fn connections<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Connection>, String>> {
        Box::pin(sdk::connections(&self.client, id))
    }
    fn accept<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::accept(&self.client, id, endpoints))
    }
    fn reject<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::reject(&self.client, id, endpoints))
    }
    fn endpoints<'a>(
        &'a self,
        owner_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SeenEndpoint>, String>> {
        Box::pin(sdk::endpoints(&self.client, owner_id))
    }
    fn create_endpoint<'a>(
        &'a self,
        service_name: &'a str,
        wanted: &'a WantedEndpoint,
        token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpoint, String>> {
        Box::pin(sdk::create_endpoint(
            &self.client,
            service_name,
            wanted,
            token,
        ))
    }
    fn delete_endpoint<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::delete_endpoint(&self.client, id))
    }
    fn retag<'a>(
        &'a self,
        ids: &'a [String],
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(sdk::retag(&self.client, ids, key, value))
    }
    fn subnet_cidrs<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, String>, String>> {
        Box::pin(sdk::subnet_cidrs(&self.client, ids))
    }
}
