//! What a spoke has, in AWS (made in moto through the real SDK) and in its cluster (a backend
//! Service and its slices), and the [`Setup`] every load-balancer test starts from: a VPC with internal and public
//! subnets and a security group, EC2 instances for nodes, load balancers of other tools; and
//! what ELBv2 holds, read back by tags.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, InstanceType};
use aws_sdk_elasticloadbalancingv2 as elbv2;
use globalingress::api::GlobalIngress;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{Cluster, shard, unique_name};

/// The region every load-balancer test uses.
pub const REGION: &str = "eu-west-1";
/// moto's account for the static test credentials.
pub const HUB_ACCOUNT: &str = "123456789012";

/// SDK configuration in [`REGION`]: the hub's test credentials, or those of a role assumed in
/// another moto account.
pub async fn config(role: Option<&str>) -> aws_config::SdkConfig {
    let mut settings = super::aws_settings();
    settings.region = Some(REGION.to_owned());
    let hub = globalingress::aws::sdk_config(&settings).await;
    match role {
        Some(role) => assumed(&hub, role).await,
        None => hub,
    }
}

/// `config` acting as `role` (STS AssumeRole with its credentials).
pub async fn assumed(config: &aws_config::SdkConfig, role: &str) -> aws_config::SdkConfig {
    let creds = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(role)
        .role_session_name("globalingress-tests")
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials");
    config
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    creds.access_key_id,
                    creds.secret_access_key,
                    Some(creds.session_token),
                    None,
                    "assumed",
                ),
            ),
        )
        .build()
}

/// A VPC as a SpokeCluster's `spec.aws` names it.
#[derive(Debug, Clone)]
pub struct Vpc {
    pub id: String,
    pub internal: Vec<String>,
    pub public: Vec<String>,
    pub security_group: String,
}

impl Vpc {
    /// `spec.aws` of a SpokeCluster in `account` (with `role`, if any) living in this VPC.
    pub fn spec(&self, account: &str, role: Option<&str>) -> Value {
        let mut aws = json!({
            "accountId": account,
            "vpcId": self.id,
            "subnets": { "internal": self.internal, "public": self.public },
            "securityGroups": [self.security_group],
        });
        if let Some(role) = role {
            aws["roleArn"] = json!(role);
        }
        aws
    }
}

/// A fresh VPC with two internal and two public subnets and a security group.
pub async fn vpc(config: &aws_config::SdkConfig) -> Vpc {
    let ec2 = aws_sdk_ec2::Client::new(config);
    // A /16 of its own per test (moto checks subnets against their VPC's block only).
    let n = u8::try_from(std::process::id() % 200).unwrap_or(1);
    let id = ec2
        .create_vpc()
        .cidr_block(format!("10.{n}.0.0/16"))
        .send()
        .await
        .expect("CreateVpc")
        .vpc
        .and_then(|v| v.vpc_id)
        .expect("vpc id");
    let mut subnets = Vec::new();
    for (i, zone) in ["a", "b", "a", "b"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&id)
            .cidr_block(format!("10.{n}.{i}.0/24"))
            .availability_zone(format!("{REGION}{zone}"))
            .send()
            .await
            .expect("CreateSubnet")
            .subnet
            .and_then(|s| s.subnet_id)
            .expect("subnet id");
        subnets.push(subnet);
    }
    let security_group = ec2
        .create_security_group()
        .group_name(unique_name("gi-lb"))
        // With spaces: moto checks the Rust SDK's %20 in a form body since moto-signature.patch.
        .description("load balancers of a globalingress test")
        .vpc_id(&id)
        .send()
        .await
        .expect("CreateSecurityGroup")
        .group_id
        .expect("group id");
    Vpc {
        id,
        internal: subnets[..2].to_vec(),
        public: subnets[2..].to_vec(),
        security_group,
    }
}

/// Running EC2 instances in `subnet`, for spoke nodes; their ids.
pub async fn instances(config: &aws_config::SdkConfig, subnet: &str, count: i32) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .subnet_id(subnet)
        .send()
        .await
        .expect("RunInstances");
    let ids: Vec<String> = out
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    // moto starts them as pending; a describe makes them running.
    let _ = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(ids.clone()))
                .build(),
        )
        .send()
        .await;
    ids
}

/// A load balancer (with a listener-less target group) made by another tool, tagged `tags`.
pub async fn foreign_load_balancer(
    elb: &elbv2::Client,
    name: &str,
    subnets: &[String],
    tags: &[(&str, &str)],
) -> elbv2::types::LoadBalancer {
    let tags: Vec<elbv2::types::Tag> = tags
        .iter()
        .map(|(k, v)| elbv2::types::Tag::builder().key(*k).value(*v).build())
        .collect();
    elb.create_load_balancer()
        .name(name)
        .set_subnets(Some(subnets.to_vec()))
        .scheme(elbv2::types::LoadBalancerSchemeEnum::Internal)
        .r#type(elbv2::types::LoadBalancerTypeEnum::Network)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .expect("CreateLoadBalancer")
        .load_balancers()
        .first()
        .cloned()
        .expect("a load balancer")
}

/// What ELBv2 holds for one GlobalIngress (by its `globalingress.io/globalingress` tag).
#[derive(Debug, Default)]
pub struct Owned {
    /// Load balancers by name.
    pub load_balancers: BTreeMap<String, elbv2::types::LoadBalancer>,
    /// Target groups by name.
    pub target_groups: BTreeMap<String, elbv2::types::TargetGroup>,
    /// Listeners of those load balancers.
    pub listeners: Vec<elbv2::types::Listener>,
    /// The owner tag of each load balancer and target group, by name.
    pub owners: BTreeMap<String, String>,
}

/// Every load balancer and target group tagged as serving `global_ingress` (`ns/name`). Read
/// again when something went while it was being read (the operator deletes as we look).
pub async fn owned_by(elb: &elbv2::Client, global_ingress: &str) -> Owned {
    let mut last = String::new();
    for _ in 0..20 {
        match try_owned_by(elb, global_ingress).await {
            Ok(owned) => return owned,
            Err(e) => last = e,
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("cannot read what {global_ingress} owns: {last}");
}

async fn try_owned_by(elb: &elbv2::Client, global_ingress: &str) -> Result<Owned, String> {
    let lbs = elb
        .describe_load_balancers()
        .page_size(400)
        .send()
        .await
        .map_err(|e| format!("DescribeLoadBalancers: {e:?}"))?
        .load_balancers
        .unwrap_or_default();
    let tgs = elb
        .describe_target_groups()
        .page_size(400)
        .send()
        .await
        .map_err(|e| format!("DescribeTargetGroups: {e:?}"))?
        .target_groups
        .unwrap_or_default();
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn.clone())
        .chain(tgs.iter().filter_map(|t| t.target_group_arn.clone()))
        .collect();
    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for chunk in arns.chunks(20) {
        for d in elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| format!("DescribeTags: {e:?}"))?
            .tag_descriptions
            .unwrap_or_default()
        {
            tags.insert(
                d.resource_arn.clone().unwrap_or_default(),
                d.tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            );
        }
    }
    let ours = |arn: &Option<String>| {
        tags.get(arn.as_deref().unwrap_or_default())
            .and_then(|t| t.get("globalingress.io/globalingress"))
            .is_some_and(|g| g == global_ingress)
    };
    let owner = |arn: &Option<String>| {
        tags.get(arn.as_deref().unwrap_or_default())
            .and_then(|t| t.get("globalingress.io/owner"))
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Owned::default();
    for lb in lbs.into_iter().filter(|l| ours(&l.load_balancer_arn)) {
        let name = lb.load_balancer_name.clone().unwrap_or_default();
        out.owners
            .insert(name.clone(), owner(&lb.load_balancer_arn));
        out.listeners.extend(
            elb.describe_listeners()
                .load_balancer_arn(lb.load_balancer_arn.clone().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("DescribeListeners: {e:?}"))?
                .listeners
                .unwrap_or_default(),
        );
        out.load_balancers.insert(name, lb);
    }
    for tg in tgs.into_iter().filter(|t| ours(&t.target_group_arn)) {
        let name = tg.target_group_name.clone().unwrap_or_default();
        out.owners.insert(name.clone(), owner(&tg.target_group_arn));
        out.target_groups.insert(name, tg);
    }
    Ok(out)
}

/// The registered targets (`id:port`, not draining) of a target group.
pub async fn registered(elb: &elbv2::Client, tg: &elbv2::types::TargetGroup) -> BTreeSet<String> {
    elb.describe_target_health()
        .target_group_arn(tg.target_group_arn.clone().unwrap_or_default())
        .send()
        .await
        .expect("DescribeTargetHealth")
        .target_health_descriptions
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            d.target_health().and_then(|h| h.state())
                != Some(&elbv2::types::TargetHealthStateEnum::Draining)
        })
        .filter_map(|d| {
            let t = d.target?;
            Some(format!("{}:{}", t.id?, t.port.unwrap_or_default()))
        })
        .collect()
}

/// A SpokeCluster for spoke-a in [`REGION`] with `aws` as its `spec.aws` (the Secret `spoke-a`
/// of `ns` must exist: [`super::spoke_a`] makes it); returns its name.
pub async fn spoke(client: &kube::Client, ns: &str, prefix: &str, aws: Value) -> String {
    let name = unique_name(prefix);
    kube::Api::<globalingress::api::SpokeCluster>::all(client.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster",
                "metadata": { "name": name, "labels": shard(ns) },
                "spec": { "region": REGION,
                          "kubeconfigSecretRef": { "namespace": ns, "name": "spoke-a" },
                          "aws": aws }
            }))
            .expect("spoke json"),
        )
        .await
        .expect("create the SpokeCluster");
    name
}

/// A backend Service `web` (port 80 → target port `http` 8080, NodePort allocated) in a fresh
/// namespace of spoke-a; returns the namespace.
pub async fn backend(spoke: &kube::Client, service_type: &str) -> String {
    let ns = super::namespace(spoke, "lb-app").await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "type": service_type, "selector": { "app": "web" },
                  "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] }
    }))
    .unwrap();
    Api::<Service>::namespaced(spoke.clone(), &ns)
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    ns
}

/// Sets the EndpointSlice of `web` to `endpoints` (address, ready, terminating).
pub async fn set_endpoints(spoke: &kube::Client, ns: &str, endpoints: &[(&str, bool, bool)]) {
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": { "name": "web-1", "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": "IPv4",
        "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
        "endpoints": endpoints.iter().map(|(ip, ready, terminating)| json!({
            "addresses": [ip],
            "conditions": { "ready": ready, "serving": ready, "terminating": terminating }
        })).collect::<Vec<_>>()
    }))
    .unwrap();
    Api::<EndpointSlice>::namespaced(spoke.clone(), ns)
        .patch(
            "web-1",
            &PatchParams::apply("globalingress-tests").force(),
            &Patch::Apply(&slice),
        )
        .await
        .unwrap();
}

/// What every load-balancer test starts from: the hub with the CRDs; a namespace `<prefix>-…`
/// holding the Secret of spoke-a; a fresh VPC in the hub's moto account and a SpokeCluster for
/// spoke-a in it; the backend Service `web` of `service_type` in a namespace of spoke-a; a
/// Route 53 zone with its DNSZone.
pub struct Setup {
    pub hub: kube::Client,
    pub spoke: kube::Client,
    pub ns: String,
    pub config: aws_config::SdkConfig,
    pub elb: elbv2::Client,
    pub vpc: Vpc,
    pub spoke_name: String,
    /// The spoke namespace of the backend Service.
    pub app: String,
    pub zone: super::Route53Zone,
    pub api: Api<GlobalIngress>,
}

pub async fn setup(prefix: &str, service_type: &str) -> Setup {
    let hub = super::kube(Cluster::Hub).await;
    let spoke = super::kube(Cluster::SpokeA).await;
    super::install_crds(&hub).await;
    let ns = super::namespace(&hub, prefix).await;
    let _ = super::spoke_a(&hub, &ns).await;
    let config = self::config(None).await;
    let elb = elbv2::Client::new(&config);
    let vpc = self::vpc(&config).await;
    let spoke_name = self::spoke(&hub, &ns, prefix, vpc.spec(HUB_ACCOUNT, None)).await;
    let app = backend(&spoke, service_type).await;
    let zone = super::route53_zone(Some((&hub, &ns)), prefix).await;
    let api = Api::namespaced(hub.clone(), &ns);
    Setup {
        hub,
        spoke,
        ns,
        config,
        elb,
        vpc,
        spoke_name,
        app,
        zone,
        api,
    }
}
