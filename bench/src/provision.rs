//! The provisioning scenario: N GlobalIngresses x 2 Provision targets (an internal NLB and an
//! internal ALB, IP targets from one spoke Service's EndpointSlice) in one spoke VPC on the
//! emulator, the AWS calls through the project's counting proxy. It measures the time until
//! every GlobalIngress is `LoadBalancersReady`, the ELBv2 calls by operation (the goal: one
//! create per resource, describes batched), the peak RSS; then a change that reconciles every
//! GlobalIngress with nothing to do (the SpokeCluster is relabelled) and the ELBv2 calls that
//! took (the goal: no write, no describe).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use globalingress::api::{DNSZone, GlobalIngress, SpokeCluster};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::Args;
use crate::env::{Env, all_true, create_all, hosted_zone, wait_until};
use crate::operator::{self, Operator};
use crate::publish::Proxy;

/// Runs every size in `args.provision_sizes` and prints the table.
pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for size in &args.provision_sizes {
        let started = Instant::now();
        rows.push(scenario(args, env, *size).await?);
        eprintln!("[provision {size}] done in {:?}", started.elapsed());
    }
    print(&rows);
    Ok(())
}

struct Row {
    size: usize,
    ready: Duration,
    calls: BTreeMap<String, usize>,
    rss: f64,
    idle_calls: BTreeMap<String, usize>,
    idle_for: Duration,
}

fn print(rows: &[Row]) {
    println!();
    println!(
        "Provisioning (ELBv2 on the emulator, 2 Provision targets per GlobalIngress: NLB + ALB, IP)"
    );
    for r in rows {
        println!(
            "N={}  load balancers={}  all LoadBalancersReady after {:.2}s  peak RSS {:.0} MiB",
            r.size,
            2 * r.size,
            r.ready.as_secs_f64(),
            r.rss
        );
        println!("  ELBv2 calls from cold, by operation:");
        for (op, n) in &r.calls {
            println!(
                "    {op:<28} {n:>6}  ({:.2} per load balancer)",
                *n as f64 / (2 * r.size) as f64
            );
        }
        let writes: usize = r
            .idle_calls
            .iter()
            .filter(|(op, _)| globalingress::aws::budget::is_write(op))
            .map(|(_, n)| n)
            .sum();
        let total: usize = r.idle_calls.values().sum();
        println!(
            "  then every GlobalIngress reconciled again with nothing to do (watched {:.0}s): {} ELBv2 \
             call(s), {} write(s) {:?}",
            r.idle_for.as_secs_f64(),
            total,
            writes,
            r.idle_calls
        );
    }
}

/// A VPC with two internal subnets, made with boto3 (the emulator's own SDK, from the
/// project's venv) to keep the EC2 crate out of the release build.
fn vpc(endpoint: &str, keys: &(String, String)) -> anyhow::Result<(String, Vec<String>)> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = r#"
import json, sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="eu-west-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.90.{i}.0/24",
                             AvailabilityZone=f"eu-west-1{z}")["Subnet"]["SubnetId"]
           for i, z in enumerate("ab")]
print(json.dumps({"vpc": vpc, "subnets": subnets}))
"#;
    let out = Command::new(&python)
        .args(["-c", script, endpoint, &keys.0, &keys.1])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "boto3 CreateVpc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        made["vpc"].as_str().context("vpc id")?.to_owned(),
        made["subnets"]
            .as_array()
            .context("subnets")?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    ))
}

fn by_operation(ops: &[String]) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for op in ops {
        *calls.entry(op.clone()).or_insert(0) += 1;
    }
    calls
}

/// ELBv2's operations among what the proxy saw.
fn elbv2(ops: &[String]) -> Vec<String> {
    const ELB: &[&str] = &[
        "DescribeLoadBalancers",
        "DescribeTargetGroups",
        "DescribeTags",
        "DescribeListeners",
        "DescribeTargetHealth",
        "CreateLoadBalancer",
        "CreateTargetGroup",
        "CreateListener",
        "ModifyListener",
        "ModifyTargetGroup",
        "RegisterTargets",
        "DeregisterTargets",
        "SetSubnets",
        "SetSecurityGroups",
        "DeleteLoadBalancer",
        "DeleteTargetGroup",
        "AddTags",
    ];
    ops.iter()
        .filter(|o| ELB.contains(&o.as_str()))
        .cloned()
        .collect()
}

async fn scenario(args: &Args, env: &Env, size: usize) -> anyhow::Result<Row> {
    let tag = format!("provision-{size}-{}", std::process::id());
    let timeout = Duration::from_secs(args.timeout);
    let hub = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let spoke = globalingress::kube_client::connect(Some(&env.spoke_a_kubeconfig)).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": tag}}))?;
    Api::<Namespace>::all(hub.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Api::<Namespace>::all(spoke.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    // The backend in the spoke: one Service, one slice of three ready endpoints.
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))?;
    Api::<Service>::namespaced(spoke.clone(), &tag)
        .create(&PostParams::default(), &svc)
        .await?;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.90.0.10"]}, {"addresses": ["10.90.0.11"]}, {"addresses": ["10.90.1.10"]}]
    }))?;
    Api::<EndpointSlice>::namespaced(spoke.clone(), &tag)
        .create(&PostParams::default(), &slice)
        .await?;
    let kubeconfig = std::fs::read(&env.spoke_a_kubeconfig)?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "spoke"}, "data": {"kubeconfig": k8s_openapi::ByteString(kubeconfig)}
    }))?;
    Api::<Secret>::namespaced(hub.clone(), &tag)
        .create(&PostParams::default(), &secret)
        .await?;
    let (vpc_id, subnets) = vpc(&env.aws_endpoint, &env.aws_admin_keys)?;
    let spoke_object: SpokeCluster = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "SpokeCluster", "metadata": {"name": tag},
        "spec": {"region": "eu-west-1", "kubeconfigSecretRef": {"namespace": tag, "name": "spoke"},
                 "aws": {"accountId": "123456789012", "vpcId": vpc_id, "subnets": {"internal": subnets}}}
    }))?;
    let spokes: Api<SpokeCluster> = Api::all(hub.clone());
    spokes.create(&PostParams::default(), &spoke_object).await?;
    let (_, domain, zone_id) = hosted_zone(env, &tag).await?;
    let zone: DNSZone = serde_json::from_value(json!({
        "apiVersion": "globalingress.io/v1alpha1", "kind": "DNSZone", "metadata": {"name": tag},
        "spec": {"domain": domain, "ownerId": "bench", "provider": {"route53": {"hostedZoneId": zone_id}}}
    }))?;
    Api::<DNSZone>::all(hub.clone())
        .create(&PostParams::default(), &zone)
        .await?;
    let api: Api<GlobalIngress> = Api::namespaced(hub.clone(), &tag);
    eprintln!("[provision {size}] creating {size} GlobalIngresses x 2 Provision targets");
    let target = |name: &str, kind: &str| {
        json!({"name": name, "weight": 1, "clusterRef": tag,
               "backend": {"service": {"namespace": tag, "name": "web", "port": 80}},
               "loadBalancer": {"mode": "Provision", "type": kind, "scheme": "Internal"}})
    };
    create_all(&api, size, |i| {
        json!({
            "apiVersion": "globalingress.io/v1alpha1", "kind": "GlobalIngress", "metadata": {"name": format!("svc{i}")},
            "spec": {"hostnames": [format!("svc{i}.{domain}")], "dnsZoneRef": tag,
                     "routing": {"policy": "Weighted"}, "healthCheck": {"protocol": "None"},
                     "targets": [target("a", "NLB"), target("b", "ALB")]}
        })
    })
    .await?;

    let proxy = Proxy::start(&env.aws_endpoint)?;
    let started = Instant::now();
    let operator = Operator::start(&operator::Options {
        binary: &args.operator,
        kubeconfig: &env.hub_kubeconfig,
        namespace: &tag,
        aws_endpoint: &proxy.url,
        aws_keys: &env.aws_operator_keys,
        log: None,
        log_filter: "warn",
    })?;
    let ready = || all_true(&api, "LoadBalancersReady", size);
    eprintln!("[provision {size}] operator started; waiting for every load balancer");
    wait_until(
        "every LoadBalancersReady",
        timeout,
        Duration::from_millis(250),
        ready,
    )
    .await?;
    let ready = started.elapsed();
    let ops = proxy.operations()?;
    let calls = by_operation(&elbv2(&ops));
    let before = ops.len();

    // Every GlobalIngress reconciled again (the SpokeCluster they all use changes a label):
    // nothing to do.
    eprintln!("[provision {size}] reconciling everything again");
    spokes
        .patch(
            &tag,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"bench": "again"}}})),
        )
        .await?;
    let idle_for = Duration::from_secs(15);
    tokio::time::sleep(idle_for).await;
    let ops = proxy.operations()?;
    let idle_calls = by_operation(&elbv2(&ops[before..]));
    let rss = operator::peak_rss_mib(operator.id());
    drop(operator);
    Ok(Row {
        size,
        ready,
        calls,
        rss,
        idle_calls,
        idle_for,
    })
}
