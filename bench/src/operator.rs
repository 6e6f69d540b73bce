//! `globalingress run` as a child process, and what its admin server says.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::env::wait_until;

/// What differs between the benchmarks' operators.
#[derive(Debug)]
pub struct Options<'a> {
    pub binary: &'a Path,
    pub kubeconfig: &'a Path,
    /// GlobalIngresses of this namespace only; the Lease lives there too.
    pub namespace: &'a str,
    pub aws_endpoint: &'a str,
    /// Access key id and secret it signs AWS calls with.
    pub aws_keys: &'a (String, String),
    /// Where its log goes (`None`: discarded).
    pub log: Option<PathBuf>,
    pub log_filter: &'a str,
}

/// One operator process; killed when dropped.
#[derive(Debug)]
pub struct Operator {
    child: Child,
    admin: SocketAddr,
}

impl Operator {
    pub fn start(o: &Options<'_>) -> anyhow::Result<Self> {
        Self::start_with(o, &[])
    }

    /// [`Operator::start`] with more flags of `globalingress run` (e.g. `--selector`).
    pub fn start_with(o: &Options<'_>, extra: &[&str]) -> anyhow::Result<Self> {
        let admin = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let (stdout, stderr) = match &o.log {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new(o.binary)
            .args(["run", "--kubeconfig"])
            .arg(o.kubeconfig)
            .args(["--admin-address", &admin.to_string()])
            .args(["--watch-namespace", o.namespace])
            .args(["--lease-namespace", o.namespace])
            .args(["--aws-endpoint-url", o.aws_endpoint])
            .args(["--resync-interval", "60s"])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &o.aws_keys.0)
            .env("AWS_SECRET_ACCESS_KEY", &o.aws_keys.1)
            .env("GLOBALINGRESS_LOG", o.log_filter)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", o.binary.display()))?;
        Ok(Self { child, admin })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/readyz` answers 200 (every watch listed once).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        wait_until(
            "operator /readyz",
            timeout,
            Duration::from_millis(200),
            || async {
                self.get("/readyz")
                    .await
                    // "HTTP/1.x 200 OK"
                    .is_ok_and(|r| r.split(' ').nth(1) == Some("200"))
            },
        )
        .await?;
        Ok(())
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let response = self.get("/metrics").await?;
        Ok(response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default())
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut conn = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(self.admin),
        )
        .await??;
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
            .await?;
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut response)).await??;
        Ok(response)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum of every sample of `family` whose labels contain each of `labels` (e.g.
/// `operation="ChangeResourceRecordSets"`).
pub fn metric_sum(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The peak resident set of a process, in MiB (0 when unknown).
pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
