//! Finding or starting the test environment.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use globalingress::dns::Name;
use globalingress::dns::tsig::{Algorithm, TsigKey};

/// The variable naming a running environment's env file (written by `tests/env/env.sh up`).
pub const ENV_VAR: &str = "GLOBALINGRESS_TEST_ENV";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    Hub,
    SpokeA,
    SpokeB,
}

/// Every endpoint of the environment.
#[derive(Debug)]
pub struct TestEnv {
    pub hub_kubeconfig: PathBuf,
    pub spoke_a_kubeconfig: PathBuf,
    pub spoke_b_kubeconfig: PathBuf,
    /// A user outside system:masters, with no RBAC grants.
    pub hub_unprivileged_kubeconfig: PathBuf,
    /// The operator's identity: a token of the Helm chart's ServiceAccount, holding exactly the
    /// chart's ClusterRole and Lease Role (`tests/env/grants.sh`).
    pub operator_kubeconfig: PathBuf,
    /// Namespace of that ServiceAccount and of its Lease Role.
    pub operator_namespace: String,
    /// The hub's identity in spoke-a: a token of the spoke chart's ServiceAccount.
    pub spoke_a_grant_kubeconfig: PathBuf,
    /// helm, at the version the project pins.
    pub helm: PathBuf,
    /// moto, through the environment's recording proxy (every call counted for
    /// `tests/iam_report.py`). moto enforces IAM: sign with one of the two key pairs below.
    pub aws_endpoint: String,
    /// The tests' own AWS identity: allowed everything.
    pub aws_admin_keys: (String, String),
    /// The operator's AWS identity: a user holding only `terraform/policies/hub.json`.
    pub aws_operator_keys: (String, String),
    /// The recording proxy's file (one JSON line per call), read by `tests/iam_report.py`.
    pub aws_operations: PathBuf,
    pub dns_server: SocketAddr,
    pub dns_zone: Name,
    pub tsig_key: TsigKey,
    /// The TSIG key's base64 secret, for Secrets the operator reads.
    pub tsig_secret: String,
    /// Knot's log (one line per update, with its remote address).
    pub knot_log: PathBuf,
    /// The environment's directory.
    pub dir: PathBuf,
    /// kubectl of the servers' version.
    pub kubectl: PathBuf,
}

impl TestEnv {
    /// The API server URL in a cluster's kubeconfig (`https://127.0.0.1:PORT`).
    pub fn url(&self, cluster: Cluster) -> String {
        let text = std::fs::read_to_string(self.kubeconfig(cluster)).expect("kubeconfig");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("server:"))
            .map(|s| s.trim().to_owned())
            .expect("a server: line in the kubeconfig")
    }

    pub fn kubeconfig(&self, cluster: Cluster) -> &Path {
        match cluster {
            Cluster::Hub => &self.hub_kubeconfig,
            Cluster::SpokeA => &self.spoke_a_kubeconfig,
            Cluster::SpokeB => &self.spoke_b_kubeconfig,
        }
    }
}

/// A started environment stays alive while this process holds its script's stdin.
struct Owned {
    _child: Child,
    _stdin: ChildStdin,
}

static ENV: OnceLock<TestEnv> = OnceLock::new();
static OWNED: Mutex<Option<Owned>> = Mutex::new(None);

/// The environment: the one named by `GLOBALINGRESS_TEST_ENV`, or one started for this process.
/// Panics (failing the calling test) when neither works.
pub fn env() -> &'static TestEnv {
    ENV.get_or_init(|| {
        let file = match std::env::var_os(ENV_VAR) {
            Some(file) => PathBuf::from(file),
            None => start(),
        };
        load(&file).unwrap_or_else(|e| panic!("test environment {}: {e}", file.display()))
    })
}

fn start() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/env.sh");
    let dir = std::env::temp_dir().join(format!("globalingress-test-{}", std::process::id()));
    eprintln!(
        "{ENV_VAR} is not set: starting a test environment in {} (make env-up starts a reusable one)",
        dir.display()
    );
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("run")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let stdin = child.stdin.take().expect("piped stdin");
    let mut env_file = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_else(|e| panic!("reading {}: {e}", script.display()));
        if let Some(path) = line.strip_prefix("READY ") {
            env_file = Some(PathBuf::from(path.trim()));
            break;
        }
    }
    let Some(env_file) = env_file else {
        let status = child.wait();
        panic!(
            "{} run exited before the environment was ready ({status:?}); its log is above",
            script.display()
        );
    };
    *OWNED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Owned {
        _child: child,
        _stdin: stdin,
    });
    env_file
}

fn load(file: &Path) -> Result<TestEnv, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read: {e}"))?;
    let vars: HashMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |key: &str| {
        vars.get(key)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| format!("{key} missing"))
    };
    let existing = |key: &str| -> Result<PathBuf, String> {
        let path = PathBuf::from(get(key)?);
        if path.exists() {
            Ok(path)
        } else {
            Err(format!("{key}={} does not exist", path.display()))
        }
    };
    let secret = std::fs::read_to_string(existing("GI_TSIG_SECRET_FILE")?)
        .map_err(|e| format!("cannot read the TSIG secret: {e}"))?;
    let algorithm: Algorithm = get("GI_TSIG_ALGORITHM")?
        .parse()
        .map_err(|e| format!("GI_TSIG_ALGORITHM: {e}"))?;
    let tsig_key = TsigKey::from_base64(&get("GI_TSIG_KEY_NAME")?, algorithm, &secret)
        .map_err(|e| format!("TSIG key: {e}"))?;
    Ok(TestEnv {
        hub_kubeconfig: existing("GI_HUB_KUBECONFIG")?,
        spoke_a_kubeconfig: existing("GI_SPOKE_A_KUBECONFIG")?,
        spoke_b_kubeconfig: existing("GI_SPOKE_B_KUBECONFIG")?,
        hub_unprivileged_kubeconfig: existing("GI_HUB_UNPRIVILEGED_KUBECONFIG")?,
        operator_kubeconfig: existing("GI_OPERATOR_KUBECONFIG")?,
        operator_namespace: get("GI_OPERATOR_NAMESPACE")?,
        spoke_a_grant_kubeconfig: existing("GI_SPOKE_A_GRANT_KUBECONFIG")?,
        helm: existing("GI_HELM")?,
        aws_endpoint: get("GI_AWS_ENDPOINT")?,
        aws_admin_keys: (
            get("GI_AWS_ADMIN_ACCESS_KEY_ID")?,
            get("GI_AWS_ADMIN_SECRET_ACCESS_KEY")?,
        ),
        aws_operator_keys: (
            get("GI_AWS_OPERATOR_ACCESS_KEY_ID")?,
            get("GI_AWS_OPERATOR_SECRET_ACCESS_KEY")?,
        ),
        aws_operations: existing("GI_AWS_OPERATIONS")?,
        dns_server: get("GI_DNS_SERVER")?
            .parse()
            .map_err(|e| format!("GI_DNS_SERVER: {e}"))?,
        dns_zone: get("GI_DNS_ZONE")?
            .parse()
            .map_err(|e| format!("GI_DNS_ZONE: {e}"))?,
        tsig_key,
        tsig_secret: secret.trim().to_owned(),
        knot_log: PathBuf::from(get("GI_ENV_DIR")?).join("knot/knot.log"),
        dir: PathBuf::from(get("GI_ENV_DIR")?),
        kubectl: existing("GI_KUBECTL")?,
    })
}
