//! `admission`: what the GlobalIngress CRD costs the API server per create. N objects of the
//! publish scenario's shape (three External targets with addresses, Latency routing) are created
//! (16 at a time) against copies of the CRD, each under a group of its own: as shipped, without
//! one validation rule at a time, without any rule, and a plain CRD whose spec is an object of
//! unknown fields (no schema to prune, default or validate). Prints the wall time of each, its
//! ratio to the plain CRD's, and the CEL evaluation time the API server reports
//! (`apiserver_cel_evaluation_duration_seconds` on its /metrics, where this server exports it).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

use crate::Args;
use crate::env::{Env, wait_until};

/// The schema of one target, in the CRD.
const TARGET_ITEMS: &str =
    "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/targets/items";

/// One copy of the CRD: its label and its schema (`None`: the plain CRD).
struct Variant {
    label: String,
    crd: Value,
}

/// A JSON pointer to every `x-kubernetes-validations` entry of `schema`, with its rule.
fn rules(schema: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key == "x-kubernetes-validations"
                    && let Value::Array(list) = value
                {
                    for (i, rule) in list.iter().enumerate() {
                        let text = rule["rule"].as_str().unwrap_or_default();
                        out.push((format!("{here}/{i}"), text.to_owned()));
                    }
                } else {
                    rules(value, &here, out);
                }
            }
        }
        Value::Array(list) => {
            for (i, value) in list.iter().enumerate() {
                rules(value, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `crd` with every rule (or only the one at `pointer`) removed.
fn without(crd: &Value, pointer: Option<&str>) -> Value {
    let mut crd = crd.clone();
    match pointer {
        Some(p) => {
            // `p` comes from `rules`: `<list pointer>/<index>`.
            if let Some((list, index)) = p.rsplit_once('/')
                && let Ok(index) = index.parse::<usize>()
                && let Some(Value::Array(rules)) = crd.pointer_mut(list)
                && index < rules.len()
            {
                rules.remove(index);
            }
        }
        None => strip(&mut crd),
    }
    crd
}

fn strip(value: &mut Value) {
    strip_keys(value, &["x-kubernetes-validations"]);
}

/// `value` without the schema keywords `keys`, wherever they are.
fn strip_keys(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            // A property may be named like a keyword: only schemas (objects with a type) lose them.
            if map.contains_key("type") || map.contains_key("properties") {
                for key in keys {
                    map.remove(*key);
                }
            }
            map.values_mut().for_each(|v| strip_keys(v, keys));
        }
        Value::Array(list) => list.iter_mut().for_each(|v| strip_keys(v, keys)),
        _ => {}
    }
}

/// The shipped CRD without its rules and without `keys` too.
fn bare(crd: &Value, keys: &[&str]) -> Value {
    let mut crd = without(crd, None);
    strip_keys(&mut crd, keys);
    crd
}

/// The shipped CRD as JSON.
fn shipped() -> anyhow::Result<Value> {
    let crd = globalingress::api::crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("globalingresses.globalingress.io"))
        .context("no GlobalIngress CRD")?;
    Ok(serde_json::to_value(crd)?)
}

fn plain(crd: &Value) -> Value {
    let mut crd = crd.clone();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = json!({
        "type": "object",
        "properties": {
            "spec": { "type": "object", "x-kubernetes-preserve-unknown-fields": true },
            "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
        }
    });
    crd["spec"]["versions"][0]
        .as_object_mut()
        .map(|v| v.remove("additionalPrinterColumns"));
    crd
}

/// The API server's total CEL evaluation seconds so far (`None` when it does not export them).
async fn cel_seconds(client: &kube::Client) -> Option<f64> {
    let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
    let text = client.request_text(request).await.ok()?;
    let sums: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("apiserver_cel_evaluation_duration_seconds_sum"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!sums.is_empty()).then(|| sums.iter().sum())
}

fn object(group: &str, i: usize) -> Value {
    json!({
        "apiVersion": format!("{group}/v1alpha1"), "kind": "GlobalIngress",
        "metadata": { "name": format!("svc{i}") },
        "spec": { "hostnames": [format!("svc{i}.bench.test")], "dnsZoneRef": "bench",
                  "routing": { "policy": "Latency" }, "healthCheck": { "protocol": "None" },
                  "targets": [
                      { "name": "a", "region": "eu-west-1", "loadBalancer": { "mode": "External", "external": { "addresses": [format!("10.1.{}.{}", i / 250, i % 250)] } } },
                      { "name": "b", "region": "us-west-2", "loadBalancer": { "mode": "External", "external": { "addresses": [format!("10.2.{}.{}", i / 250, i % 250)] } } },
                      { "name": "c", "region": "ap-southeast-2", "loadBalancer": { "mode": "External", "external": { "addresses": [format!("10.3.{}.{}", i / 250, i % 250)] } } }
                  ] }
    })
}

/// Installs `crd` under `group`, creates `size` objects in `ns`, removes the CRD (and them):
/// (wall time of the creates, CEL seconds the server reported meanwhile).
async fn measure(
    client: &kube::Client,
    crd: &Value,
    group: &str,
    ns: &str,
    size: usize,
) -> anyhow::Result<(Duration, Option<f64>)> {
    let mut crd = crd.clone();
    crd["metadata"] = json!({ "name": format!("globalingresses.{group}") });
    crd["spec"]["group"] = json!(group);
    let crd: CustomResourceDefinition = serde_json::from_value(crd)?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), &crd)
        .await
        .with_context(|| format!("creating CRD {name}"))?;
    wait_until(
        &format!("CRD {name} established"),
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            crds.get(&name).await.ok().is_some_and(|c| {
                c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
            })
        },
    )
    .await?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, "v1alpha1", "GlobalIngress"),
        "globalingresses",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    // A first object, untimed: discovery and the server's first compile of the schema.
    let warm: DynamicObject = serde_json::from_value(object(group, size))?;
    create_retrying(&api, &warm).await?;
    let cel_before = cel_seconds(client).await;
    let started = Instant::now();
    let mut creates = futures::stream::iter((0..size).map(|i| {
        let api = api.clone();
        async move {
            let doc: DynamicObject = serde_json::from_value(object(group, i))?;
            api.create(&PostParams::default(), &doc)
                .await
                .with_context(|| format!("creating svc{i}"))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(16);
    while let Some(r) = creates.next().await {
        r?;
    }
    let took = started.elapsed();
    let cel = match (cel_before, cel_seconds(client).await) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    // Gone, instances and all, before the next copy is timed: deleted in one collection call
    // (the CRD's own cleanup takes ~20 s for 1,000), then the CRD, waited for.
    api.delete_collection(&DeleteParams::default(), &Default::default())
        .await?;
    crds.delete(&name, &DeleteParams::default()).await?;
    wait_until(
        &format!("CRD {name} gone"),
        Duration::from_secs(120),
        Duration::from_millis(200),
        || async { matches!(crds.get_opt(&name).await, Ok(None)) },
    )
    .await?;
    Ok((took, cel))
}

/// The first create of a just-established CRD can meet a 404 while the server wires it up.
async fn create_retrying(api: &Api<DynamicObject>, doc: &DynamicObject) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        match api.create(&PostParams::default(), doc).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no attempt"), anyhow::Error::from))
}

pub async fn run(args: &Args, env: &Env) -> anyhow::Result<()> {
    let size = args.admission_size;
    let client = globalingress::kube_client::connect(Some(&env.hub_kubeconfig)).await?;
    let tag = format!("admission-{}", std::process::id());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": tag } }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let crd = shipped()?;
    let mut found = Vec::new();
    rules(&crd, "", &mut found);
    let mut variants = vec![
        Variant {
            label: "plain CRD (spec: unknown fields)".to_owned(),
            crd: plain(&crd),
        },
        Variant {
            label: "as shipped".to_owned(),
            crd: crd.clone(),
        },
        Variant {
            label: "no validation rules".to_owned(),
            crd: without(&crd, None),
        },
        Variant {
            label: "no rules, no defaults".to_owned(),
            crd: bare(&crd, &["default"]),
        },
        Variant {
            label: "no rules, no defaults under targets[]".to_owned(),
            crd: {
                let mut c = without(&crd, None);
                if let Some(items) = c.pointer_mut(TARGET_ITEMS) {
                    strip_keys(items, &["default"]);
                }
                c
            },
        },
        Variant {
            label: "no rules, no patterns or formats".to_owned(),
            crd: bare(&crd, &["pattern", "format"]),
        },
        Variant {
            label: "no rules, no list types (set/map)".to_owned(),
            crd: bare(
                &crd,
                &["x-kubernetes-list-type", "x-kubernetes-list-map-keys"],
            ),
        },
        Variant {
            label: "no rules, no length or item bounds".to_owned(),
            crd: bare(
                &crd,
                &[
                    "maxLength",
                    "minLength",
                    "maxItems",
                    "minItems",
                    "maximum",
                    "minimum",
                ],
            ),
        },
    ];
    for (pointer, rule) in found.iter().filter(|_| args.admission_each_rule) {
        let short: String = rule.split_whitespace().collect::<Vec<_>>().join(" ");
        let short = if short.len() > 70 {
            format!(
                "{}…",
                &short[..short.char_indices().nth(69).map_or(short.len(), |(i, _)| i)]
            )
        } else {
            short
        };
        let field = pointer
            .trim_start_matches("/spec/versions/0/schema/openAPIV3Schema")
            .replace("/properties", "")
            .replace("/items", "[]")
            .replace("/x-kubernetes-validations", " #");
        variants.push(Variant {
            label: format!("without {field}: {short}"),
            crd: without(&crd, Some(pointer)),
        });
    }
    eprintln!(
        "[admission] {size} creates per variant, {} variants ({} rules in the CRD)",
        variants.len(),
        found.len()
    );
    // Each variant `repeats` times, round after round (a slow moment of the machine spreads over
    // all of them); the median counts.
    let repeats = args.admission_repeats.max(1);
    let mut runs: Vec<Vec<(Duration, Option<f64>)>> = vec![Vec::new(); variants.len()];
    for round in 0..repeats {
        for (k, v) in variants.iter().enumerate() {
            let group = format!("v{k}r{round}.admission.bench");
            let (took, cel) = measure(&client, &v.crd, &group, &tag, size).await?;
            eprintln!(
                "[admission {}/{repeats}] {:>7.2}s  {}",
                round + 1,
                took.as_secs_f64(),
                v.label
            );
            runs[k].push((took, cel));
        }
    }
    let rows: Vec<(String, Duration, Option<f64>)> = variants
        .iter()
        .zip(runs)
        .map(|(v, mut r)| {
            r.sort_by_key(|(took, _)| *took);
            let (took, cel) = r[r.len() / 2];
            (v.label.clone(), took, cel)
        })
        .collect();
    Api::<Namespace>::all(client.clone())
        .delete(&tag, &DeleteParams::default())
        .await?;
    let base = rows[0].1.as_secs_f64();
    let shipped = rows[1].1.as_secs_f64();
    println!(
        "\nAdmission: {size} GlobalIngress creates (16 at a time) per copy of the CRD, median of {repeats}"
    );
    println!(
        "{:>9} {:>8} {:>9} {:>9}  variant",
        "seconds", "ms/each", "x plain", "CEL s"
    );
    for (label, took, cel) in &rows {
        let s = took.as_secs_f64();
        println!(
            "{s:>9.2} {:>8.2} {:>9.2} {:>9}  {label}{}",
            s * 1000.0 / size as f64,
            s / base,
            cel.map_or_else(|| "-".to_owned(), |c| format!("{c:.3}")),
            if label.starts_with("without ") {
                format!("  ({:+.2}s vs shipped)", s - shipped)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
