//! The shape of the code, checked: the pure core stays pure, the modules form no cycle, and no
//! source file grows past about 600 lines. Read from the sources themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The file's code without its test module and comments (what the build uses outside tests).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("_tests.rs"))
}

/// The module a file belongs to: its first path component under `src/`, and for `reconcile`
/// the second (`reconcile::plan`, `reconcile::apply`, ...), whose dependencies matter too.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).ok()?;
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [file] if file == "lib" || file == "main" || file == "architecture_tests" => None,
        [top, second, ..] if top == "reconcile" && second != "mod" => {
            Some(format!("reconcile::{second}"))
        }
        [top, ..] => Some(top.clone()),
        [] => None,
    }
}

/// The modules `code` names with `crate::` paths (for `reconcile`, down to its submodules).
fn mentions(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let ident = |s: &str| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        };
        let top = ident(rest);
        if top == "reconcile" {
            let after = &rest[top.len()..];
            match after.strip_prefix("::") {
                Some(sub) if sub.starts_with('{') => {
                    for part in sub[1..].split('}').next().unwrap_or_default().split(',') {
                        let name = ident(part.trim());
                        if !name.is_empty() {
                            out.insert(format!("reconcile::{name}"));
                        }
                    }
                }
                Some(sub) => {
                    let name = ident(sub);
                    let known = ["apply", "index", "observe", "plan", "status"];
                    out.insert(if known.contains(&name.as_str()) {
                        format!("reconcile::{name}")
                    } else {
                        "reconcile::mod".to_owned()
                    });
                }
                None => {
                    out.insert("reconcile::mod".to_owned());
                }
            }
        } else if !top.is_empty() {
            out.insert(top);
        }
    }
    out
}

#[test]
fn the_pure_core_uses_no_client_no_runtime_and_no_clock() {
    let forbidden = [
        "kube::Client",
        "kube::Api",
        "kube::api",
        "kube::runtime",
        "aws_sdk",
        "aws_config",
        "aws_smithy",
        "tokio",
        "::now(",
        "Instant",
        "SystemTime",
        "std::thread",
    ];
    let mut found = Vec::new();
    for dir in ["model", "reconcile/plan"] {
        for path in sources(&src().join(dir)) {
            let code = code(&path);
            for word in forbidden {
                if code.contains(word) {
                    found.push(format!("{} uses {word}", path.display()));
                }
            }
            // Only the pure vocabulary: the API types and the model (and, for the plan, itself).
            for module in mentions(&code) {
                let allowed = matches!(module.as_str(), "api" | "model")
                    || (dir == "reconcile/plan" && module == "reconcile::plan");
                if !allowed {
                    found.push(format!("{} uses crate::{module}", path.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn modules_form_no_import_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources(&src()) {
        if is_test_file(&path) {
            continue;
        }
        let Some(module) = module_of(&path) else {
            continue;
        };
        let edges = graph.entry(module.clone()).or_default();
        for target in mentions(&code(&path)) {
            // `reconcile/mod.rs` is the parent: its children may use what it declares.
            if target != module && target != "reconcile::mod" {
                edges.insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    // The check sees what it should.
    assert!(graph["controller"].contains("reconcile::plan"));
    assert!(graph["reconcile::status"].contains("reconcile::apply"));
}

/// The EC2 crate is the largest dependency: only PrivateLink's adapter (and the account scopes
/// that build its client) name it, behind the port of `aws::privatelink`.
#[test]
fn ec2_stays_behind_the_privatelink_port() {
    let allowed = [
        src().join("aws/privatelink/sdk.rs"),
        src().join("aws/privatelink/mod.rs"),
        src().join("aws/accounts.rs"),
    ];
    let offenders: Vec<String> = sources(&src())
        .into_iter()
        .filter(|p| !allowed.contains(p))
        .filter(|p| code(p).contains("aws_sdk_ec2"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "EC2 outside its port: {offenders:?}");
}

#[test]
fn no_source_file_is_longer_than_about_600_lines() {
    let long: Vec<String> = sources(&src())
        .into_iter()
        .chain(sources(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        ))
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > 620).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:#?}");
}
