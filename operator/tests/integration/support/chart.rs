//! The Helm charts as the tests use them: rendered by the pinned helm, applied with kubectl, and
//! tokens of their ServiceAccounts minted with TokenRequest.

use std::path::{Path, PathBuf};

use super::env;

/// `helm template RELEASE deploy/CHART --namespace NAMESPACE ARGS...`; panics when helm refuses.
pub async fn template(chart: &str, release: &str, namespace: &str, args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(chart);
    let output = tokio::process::Command::new(&env().helm)
        .arg("template")
        .arg(release)
        .arg(&dir)
        .args(["--namespace", namespace, "--kube-version", "1.36.3"])
        .args(args)
        .output()
        .await
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm template {chart} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("helm prints UTF-8")
}

/// Applies `yaml` (server-side) with the admin `kubeconfig`; panics when the server refuses it.
pub async fn apply(kubeconfig: &Path, yaml: &str) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(&env().kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=globalingress-tests",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(yaml.as_bytes()).await.expect("write YAML");
    drop(stdin);
    let output = child.wait_with_output().await.expect("kubectl apply");
    assert!(
        output.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A kubeconfig like the admin `kubeconfig` (same server and CA) that authenticates as the
/// ServiceAccount `namespace/name`, with a token from TokenRequest.
pub async fn token_kubeconfig(kubeconfig: &Path, namespace: &str, name: &str) -> PathBuf {
    let output = tokio::process::Command::new(&env().kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", namespace, "create", "token", name, "--duration", "2h"])
        .output()
        .await
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl create token {namespace}/{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).expect("a token");
    let admin = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let text: String = admin
        .lines()
        .map(|l| match l.trim().strip_prefix("token:") {
            Some(_) => format!("    token: {}\n", token.trim()),
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(text, admin, "no token line in {}", kubeconfig.display());
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", super::unique_name(name)));
    std::fs::write(&path, text).expect("write the kubeconfig");
    path
}
