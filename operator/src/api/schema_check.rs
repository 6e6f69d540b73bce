//! Offline validation of an object against its CRD's structural schema: the checks the API server
//! makes before CEL (types, enums, ranges, lengths, patterns, required and unknown fields, set and
//! map list uniqueness), reported with the API server's field paths (`spec.targets[0].weight`).
//!
//! `globalingress plan` runs this and the CEL rules, so a file that plans cleanly applies cleanly.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSON, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use serde_json::Value;

/// One violation: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks `value` (the object's `spec`, or the whole object with `path` empty) against `schema`.
pub fn check(schema: &JSONSchemaProps, value: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, path, &mut out);
    out
}

fn violation(out: &mut Vec<Violation>, path: &str, message: String) {
    out.push(Violation {
        field: path.to_owned(),
        message,
    });
}

fn walk(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if value.is_null() {
        if schema.nullable != Some(true) {
            violation(out, path, "must not be null".to_owned());
        }
        return;
    }
    if let Some(ty) = schema.type_.as_deref() {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            violation(out, path, format!("must be of type {ty}"));
            return;
        }
    }
    if let Some(allowed) = &schema.enum_ {
        let values: Vec<&Value> = allowed.iter().map(|JSON(v)| v).collect();
        if !values.contains(&value) {
            let shown: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            violation(
                out,
                path,
                format!(
                    "Unsupported value {value}: supported values: {}",
                    shown.join(", ")
                ),
            );
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.minimum
            && n < min
        {
            violation(
                out,
                path,
                format!("should be greater than or equal to {min}"),
            );
        }
        if let Some(max) = schema.maximum
            && n > max
        {
            violation(out, path, format!("should be less than or equal to {max}"));
        }
    }
    if let Some(s) = value.as_str() {
        let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
        if schema.min_length.is_some_and(|min| len < min) {
            violation(
                out,
                path,
                format!(
                    "should be at least {} chars long",
                    schema.min_length.unwrap_or(0)
                ),
            );
        }
        if schema.max_length.is_some_and(|max| len > max) {
            violation(
                out,
                path,
                format!(
                    "may not be more than {} bytes",
                    schema.max_length.unwrap_or(0)
                ),
            );
        }
        if let Some(pattern) = &schema.pattern {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => {
                    violation(out, path, format!("should match '{pattern}'"));
                }
                Ok(_) => {}
                Err(e) => violation(out, path, format!("schema pattern does not compile: {e}")),
            }
        }
    }
    if let Some(items) = value.as_array() {
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        if schema.min_items.is_some_and(|min| len < min) {
            violation(
                out,
                path,
                format!(
                    "should have at least {} items",
                    schema.min_items.unwrap_or(0)
                ),
            );
        }
        if schema.max_items.is_some_and(|max| len > max) {
            violation(
                out,
                path,
                format!("must have at most {} items", schema.max_items.unwrap_or(0)),
            );
        }
        let keys = schema
            .x_kubernetes_list_map_keys
            .clone()
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let key = match schema.x_kubernetes_list_type.as_deref() {
                Some("set") => Some(item.to_string()),
                Some("map") => Some(
                    keys.iter()
                        .map(|k| item.get(k).map(Value::to_string).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("/"),
                ),
                _ => None,
            };
            if let Some(key) = key
                && !seen.insert(key.clone())
            {
                violation(
                    out,
                    &format!("{path}[{i}]"),
                    format!("Duplicate value: {key}"),
                );
            }
            if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = &schema.items {
                walk(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
    }
    if let Some(map) = value.as_object() {
        for required in schema.required.iter().flatten() {
            if !map.contains_key(required) {
                violation(out, &join(path, required), "Required value".to_owned());
            }
        }
        if let Some(properties) = &schema.properties {
            for (key, child) in map {
                match properties.get(key) {
                    Some(child_schema) => walk(child_schema, child, &join(path, key), out),
                    // Top-level apiVersion/kind/metadata are checked by the API machinery.
                    None if path.is_empty() => {}
                    None if schema.x_kubernetes_preserve_unknown_fields == Some(true) => {}
                    None => violation(out, &join(path, key), "unknown field".to_owned()),
                }
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt as _;
    use serde_json::json;

    use super::*;
    use crate::api::GlobalIngress;

    fn schema() -> JSONSchemaProps {
        GlobalIngress::crd().spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.clone())
            .expect("schema")
    }

    fn base() -> Value {
        json!({"spec": {
            "hostnames": ["a.example.com"],
            "dnsZoneRef": "z",
            "routing": {"policy": "Weighted"},
            "targets": [{"name": "a", "weight": 1, "loadBalancer": {"mode": "External", "external": {"addresses": ["192.0.2.1"]}}}]
        }})
    }

    #[test]
    fn a_valid_object_has_no_violations() {
        assert_eq!(check(&schema(), &base(), ""), vec![]);
    }

    #[test]
    fn violations_carry_the_api_servers_field_paths() {
        let mut v = base();
        v["spec"]["ttl"] = json!(4);
        v["spec"]["targets"][0]["weight"] = json!(300);
        v["spec"]["routing"]["policy"] = json!("Random");
        v["spec"]["hostnames"] = json!(["A.example.com", "A.example.com"]);
        v["spec"]["bogus"] = json!(1);
        let fields: BTreeSet<String> = check(&schema(), &v, "")
            .into_iter()
            .map(|v| v.field)
            .collect();
        for expected in [
            "spec.ttl",
            "spec.targets[0].weight",
            "spec.routing.policy",
            "spec.hostnames[0]",
            "spec.hostnames[1]",
            "spec.bogus",
        ] {
            assert!(
                fields.contains(expected),
                "{expected} missing from {fields:?}"
            );
        }
    }
}
