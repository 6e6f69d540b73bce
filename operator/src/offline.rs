//! `globalingress plan -f FILE…`: validate objects from YAML files the way the API server would
//! (structural schema and CEL rules) and print the records the controller would publish, without
//! contacting anything.
//!
//! Offline, only External targets have a known endpoint; targets that adopt or provision a load
//! balancer are listed as pending (the controller learns their address from the spokes).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kube::CustomResourceExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::api::schema_check::{self, Violation};
use crate::api::{DNSZone, GlobalIngress, SpokeCluster};
use crate::model::dns::Zone;
use crate::model::health::Signal;
use crate::reconcile::observe::{external_endpoint, zone_of};
use crate::reconcile::plan::{self, Plan, TargetView};

/// One problem with the input, located by file, object and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// `Kind/name`, or `document N` when the document has no usable kind or name.
    pub object: String,
    /// Field path, when the problem is in one field.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: ", self.file.display(), self.object)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// The objects read from the files.
#[derive(Debug, Default)]
pub struct Inputs {
    pub zones: Vec<DNSZone>,
    pub spokes: Vec<SpokeCluster>,
    pub ingresses: Vec<(PathBuf, GlobalIngress)>,
}

/// Reads and validates every document of every file. All problems are returned, not just the
/// first.
pub fn load(files: &[PathBuf]) -> Result<Inputs, Vec<InputError>> {
    let mut inputs = Inputs::default();
    let mut errors = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(error(file, "file", None, format!("cannot read: {e}")));
                continue;
            }
        };
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(error(file, "file", None, format!("not valid YAML: {e}")));
                continue;
            }
        };
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            load_document(file, i, doc, &mut inputs, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(inputs)
    } else {
        Err(errors)
    }
}

fn error(file: &Path, object: &str, field: Option<String>, message: String) -> InputError {
    InputError {
        file: file.to_owned(),
        object: object.to_owned(),
        field,
        message,
    }
}

fn load_document(
    file: &Path,
    index: usize,
    doc: Value,
    inputs: &mut Inputs,
    errors: &mut Vec<InputError>,
) {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let object = if kind.is_empty() || name.is_empty() {
        format!("document {}", index + 1)
    } else {
        format!("{kind}/{name}")
    };
    if name.is_empty() {
        errors.push(error(
            file,
            &object,
            Some("metadata.name".into()),
            "Required value".into(),
        ));
        return;
    }
    let crd = match kind.as_str() {
        "GlobalIngress" => GlobalIngress::crd(),
        "SpokeCluster" => SpokeCluster::crd(),
        "DNSZone" => DNSZone::crd(),
        other => {
            errors.push(error(
                file,
                &object,
                Some("kind".into()),
                format!("{other:?} is not GlobalIngress, SpokeCluster or DNSZone"),
            ));
            return;
        }
    };
    if doc.get("apiVersion").and_then(Value::as_str) != Some("globalingress.io/v1alpha1") {
        errors.push(error(
            file,
            &object,
            Some("apiVersion".into()),
            "must be globalingress.io/v1alpha1".into(),
        ));
        return;
    }
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    let violations: Vec<Violation> = match schema {
        Some(schema) => schema_check::check(schema, &doc, ""),
        None => Vec::new(),
    };
    if !violations.is_empty() {
        errors.extend(
            violations
                .into_iter()
                .map(|v| error(file, &object, Some(v.field), v.message)),
        );
        return;
    }
    let cel = match kind.as_str() {
        "GlobalIngress" => typed::<GlobalIngress>(doc).map(|gi| {
            let result = gi.validate_cel();
            inputs.ingresses.push((file.to_owned(), gi));
            result
        }),
        "SpokeCluster" => typed::<SpokeCluster>(doc).map(|s| {
            let result = s.validate_cel();
            inputs.spokes.push(s);
            result
        }),
        _ => typed::<DNSZone>(doc).map(|z| {
            let result = z.validate_cel();
            inputs.zones.push(z);
            result
        }),
    };
    match cel {
        Err(message) => errors.push(error(file, &object, None, message)),
        Ok(Err(failures)) => errors.push(error(file, &object, None, failures.to_string())),
        Ok(Ok(())) => {}
    }
}

fn typed<T: serde::de::DeserializeOwned>(doc: Value) -> Result<T, String> {
    serde_json::from_value(doc).map_err(|e| e.to_string())
}

/// The plan for one GlobalIngress.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub global_ingress: String,
    pub namespace: String,
    pub policy: String,
    pub zone: Zone,
    pub plan: Plan,
}

/// Plans every GlobalIngress of `inputs` against the DNSZones and SpokeClusters given with it.
pub fn plan_all(inputs: &Inputs) -> Result<Vec<Planned>, Vec<InputError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (file, gi) in &inputs.ingresses {
        let name = gi.metadata.name.clone().unwrap_or_default();
        let Some(zone) = inputs
            .zones
            .iter()
            .find(|z| z.metadata.name.as_deref() == Some(gi.spec.dns_zone_ref.as_str()))
        else {
            errors.push(error(
                file,
                &format!("GlobalIngress/{name}"),
                Some("spec.dnsZoneRef".into()),
                format!(
                    "DNSZone {:?} is not in the given files (pass its YAML with -f)",
                    gi.spec.dns_zone_ref
                ),
            ));
            continue;
        };
        let owner_id = zone.spec.owner_id.clone();
        let zone = zone_of(zone);
        // What the controller would see before any probe or spoke answered: External
        // endpoints, regions from the spec or the SpokeClusters given, no health yet.
        let targets: Vec<TargetView> = gi
            .spec
            .targets
            .iter()
            .map(|t| {
                let spoke = t.cluster_ref.as_ref().and_then(|c| {
                    inputs
                        .spokes
                        .iter()
                        .find(|s| s.metadata.name.as_ref() == Some(c))
                });
                let spoke_region = spoke.map(|s| s.spec.region.clone());
                let endpoint = external_endpoint(t);
                // A Provision target's load balancer, as it would be created (no registrations:
                // the spoke is not asked).
                let provision = spoke
                    .filter(|_| {
                        t.load_balancer.mode
                            == crate::api::global_ingress::LoadBalancerMode::Provision
                    })
                    .map(|s| plan::load_balancers::ProvisionView {
                        owner_id: owner_id.clone(),
                        spoke: s.metadata.name.clone().unwrap_or_default(),
                        aws: s.spec.aws.clone(),
                        registrations: None,
                        region: s.spec.region.clone(),
                    });
                TargetView {
                    probes: endpoint
                        .as_ref()
                        .map(|e| plan::probes::specs(&gi.spec, t, e))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|spec| (spec, None))
                        .collect(),
                    endpoint,
                    region: t.region.clone().or(spoke_region),
                    signal: Signal::None,
                    provision,
                    target_health: None,
                }
            })
            .collect();
        let namespace = gi
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let owner = crate::model::ownership::owner_key(&namespace, &name);
        let plan = plan::plan(&plan::Input {
            owner: &owner,
            spec: &gi.spec,
            zone: Some(&zone),
            targets: &targets,
            panic: false,
            previous: &[],
            failback_approved_at: None,
            // The decisions about unprobed targets do not depend on the time.
            now: jiff::Timestamp::UNIX_EPOCH,
        });
        out.push(Planned {
            plan,
            global_ingress: name,
            namespace,
            policy: format!("{:?}", gi.spec.routing.policy),
            zone,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The human-readable report of `globalingress plan`.
pub fn render(planned: &[Planned]) -> String {
    let mut out = String::new();
    for p in planned {
        let _ = writeln!(
            out,
            "GlobalIngress {}/{}: {} routing in zone {} ({:?})",
            p.namespace, p.global_ingress, p.policy, p.zone.domain, p.zone.provider
        );
        for line in plan::render::table(&p.plan).lines() {
            let _ = writeln!(out, "  {line}");
        }
        if !p.plan.active_targets.is_empty() {
            let _ = writeln!(
                out,
                "  active targets: {}",
                p.plan.active_targets.join(", ")
            );
        }
        if !p.plan.pending_targets.is_empty() {
            let _ = writeln!(
                out,
                "  pending (endpoint known only from the spokes): {}",
                p.plan.pending_targets.join(", ")
            );
        }
        for n in &p.plan.notices {
            if n.reason != plan::reasons::NO_ENDPOINT_YET {
                let _ = writeln!(out, "  note {}: {}", n.reason, n.message);
            }
        }
        for problem in &p.plan.problems {
            let _ = writeln!(
                out,
                "  PROBLEM {} at {}: {}",
                problem.reason, problem.field, problem.message
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(names: &[&str]) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        names.iter().map(|n| dir.join(n)).collect()
    }

    fn all_examples() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn examples_plan_to_the_expected_records() {
        let inputs = load(&all_examples()).expect("examples are valid");
        let planned = plan_all(&inputs).expect("every reference resolves");
        assert!(planned.iter().all(|p| p.plan.problems.is_empty()));
        insta::assert_snapshot!("examples_table", render(&planned));
        insta::assert_snapshot!(
            "examples_json",
            serde_json::to_string_pretty(&planned).unwrap()
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn invalid_files_are_refused_naming_file_object_and_field() {
        let dir = std::env::temp_dir().join(format!("gi-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let weighted =
            std::fs::read_to_string(&examples(&["globalingress-weighted.yaml"])[0]).unwrap();
        let bad_ttl = write(&dir, "ttl.yaml", &weighted.replace("ttl: 30", "ttl: 4"));
        let bad_weights = write(
            &dir,
            "weights.yaml",
            &weighted
                .replace("weight: 90", "weight: 0")
                .replace("weight: 10", "weight: 0"),
        );
        let bad_kind = write(
            &dir,
            "kind.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        );

        let errors = load(&[bad_ttl.clone(), bad_weights.clone(), bad_kind.clone()]).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|e| e.starts_with(&format!(
                "{}: GlobalIngress/shop: spec.ttl:",
                bad_ttl.display()
            ))),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(|e| e
                .starts_with(&format!("{}: GlobalIngress/shop:", bad_weights.display()))
                && e.contains("at least one weight above 0")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with(&format!("{}: ConfigMap/x: kind:", bad_kind.display()))),
            "{shown:#?}"
        );
    }

    #[test]
    fn a_missing_zone_is_an_error_on_dns_zone_ref() {
        let inputs = load(&examples(&["globalingress-weighted.yaml"])).unwrap();
        let errors = plan_all(&inputs).unwrap_err();
        assert_eq!(errors[0].field.as_deref(), Some("spec.dnsZoneRef"));
        assert_eq!(errors[0].object, "GlobalIngress/shop");
    }
}
