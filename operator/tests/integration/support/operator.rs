//! Running `globalingress run` as a real process against the environment's API servers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{env, unique_name};

/// One operator process; killed when dropped.
pub struct Operator {
    pub child: Child,
    pub admin: String,
    pub identity: String,
    pub log: PathBuf,
    /// Where its Lease is: see [`Operator::start`].
    pub lease_namespace: String,
    pub lease_name: String,
    /// Whether the test means the operator to be refused something (else a refusal in its log
    /// fails the test when the operator is dropped).
    pub refusals_expected: bool,
}

/// Log lines saying the operator's RBAC grant refused it something: the API server's refusal,
/// and the operator's own permission checks (hub and spokes).
const REFUSALS: [&str; 3] = [
    " is forbidden: ",
    "missing permission on the hub",
    "refuses the hub",
];

/// Every test that runs the operator with the charts' grants proves them: a request refused on
/// the hub or a spoke fails the test, even when the scenario itself passed.
impl Drop for Operator {
    fn drop(&mut self) {
        if self.refusals_expected || std::thread::panicking() {
            return;
        }
        let log = self.log_text();
        if let Some(line) = log.lines().find(|l| REFUSALS.iter().any(|r| l.contains(r))) {
            panic!(
                "the operator was refused a request its chart should grant (log {}):\n{line}",
                self.log.display()
            );
        }
    }
}

/// Options for [`Operator::start`].
pub struct Options<'a> {
    pub kubeconfig: &'a Path,
    /// Namespace of GlobalIngresses (and of the Lease).
    pub namespace: &'a str,
    pub lease_name: &'a str,
    pub extra: &'a [&'a str],
}

/// Whether `kubeconfig` authenticates as the Helm chart's ServiceAccount (its token is the one
/// `tests/env/grants.sh` minted), whatever server address it names.
fn is_operator_identity(kubeconfig: &Path) -> bool {
    let token = |path: &Path| {
        std::fs::read_to_string(path).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix("token:").map(|t| t.trim().to_owned()))
        })
    };
    token(kubeconfig).is_some_and(|t| Some(t) == token(&env().operator_kubeconfig))
}

impl Operator {
    /// Starts `globalingress run`. Given the chart's ServiceAccount (`env().operator_kubeconfig`,
    /// as nearly every test does), its Lease is `<namespace>-<lease_name>` in the chart's namespace,
    /// the only one its Role covers; any other identity (a private hub's admin) keeps the Lease
    /// `lease_name` in the test's namespace.
    /// It signs AWS calls as the environment's operator user (`hub.json` only).
    pub fn start(options: &Options<'_>) -> Self {
        let keys = &env().aws_operator_keys;
        Self::start_with_aws_keys(options, (&keys.0, &keys.1))
    }

    /// [`Operator::start`] signing AWS calls with `keys` (another moto's users).
    pub fn start_with_aws_keys(options: &Options<'_>, keys: (&str, &str)) -> Self {
        let (lease_namespace, lease_name) = if is_operator_identity(options.kubeconfig) {
            (
                env().operator_namespace.clone(),
                format!("{}-{}", options.namespace, options.lease_name),
            )
        } else {
            (options.namespace.to_owned(), options.lease_name.to_owned())
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let identity = unique_name("replica");
        let log = std::env::temp_dir().join(format!("{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let aws = env().aws_endpoint.clone();
        let mut defaults: Vec<&str> = Vec::new();
        for (flag, value) in [
            ("--resync-interval", "5s"),
            ("--spoke-check-interval", "2s"),
            // moto is in sync at once; resolvers here are the test's own reads.
            ("--replaced-load-balancer-grace", "1s"),
            ("--aws-endpoint-url", aws.as_str()),
        ] {
            if !options.extra.contains(&flag) {
                defaults.extend([flag, value]);
            }
        }
        let child = Command::new(env!("CARGO_BIN_EXE_globalingress"))
            .args(["run", "--kubeconfig"])
            .arg(options.kubeconfig)
            .args(["--admin-address", &format!("127.0.0.1:{port}")])
            .args(["--watch-namespace", options.namespace])
            // Only this test's objects: tests run at once against one hub.
            .args([
                "--selector",
                &format!("{}={}", super::SHARD_LABEL, options.namespace),
            ])
            .args(["--lease-namespace", &lease_namespace])
            .args(["--lease-name", &lease_name])
            .args(["--identity", &identity])
            .args(&defaults)
            .args(options.extra)
            .env("AWS_ACCESS_KEY_ID", keys.0)
            .env("AWS_SECRET_ACCESS_KEY", keys.1)
            .env("GLOBALINGRESS_LOG", "info,globalingress=debug")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start globalingress run");
        Self {
            child,
            admin: format!("http://127.0.0.1:{port}"),
            identity,
            log,
            lease_namespace,
            lease_name,
            refusals_expected: false,
        }
    }

    /// GET on the admin server: (status code, body), or `None` while it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("{}{path}", self.admin);
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .args([
                    "-c",
                    "import sys,urllib.request,urllib.error\n\
                     try:\n  r=urllib.request.urlopen(sys.argv[1],timeout=2); print(r.status); print(r.read().decode(),end='')\n\
                     except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode(),end='')\n\
                     except Exception:\n  sys.exit(1)",
                    &url,
                ])
                .output()
        })
        .await
        .ok()?
        .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (code, body) = text.split_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_owned()))
    }

    /// Waits until the admin server answers `/readyz` with 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operator not ready after {timeout:?}; log {}:\n{}",
                self.log.display(),
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of one sample of `/metrics` (0 when absent); panics when the admin server
    /// does not answer.
    pub async fn metric(&self, sample: &str) -> f64 {
        let (_, body) = self.get("/metrics").await.expect("metrics");
        sample_value(&body, sample).unwrap_or(0.0)
    }

    /// The value of one sample of `/metrics`, `None` when the operator does not export it or
    /// its admin server does not answer yet (a process just started binds it a moment later).
    pub async fn metric_opt(&self, sample: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        sample_value(&body, sample)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn sample_value(body: &str, sample: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
