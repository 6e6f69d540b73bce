//! The fault-injecting proxy (`tests/env/fault_proxy.py`) between the AWS SDK and moto: faults,
//! delays, Route 53's PENDING → INSYNC pace (moto is INSYNC at once), a refused port, and a record
//! of every request.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::env;

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyRequest {
    /// When it arrived (unix seconds).
    pub t: f64,
    /// The AWS operation, e.g. `ChangeResourceRecordSets`, `CreateHealthCheck`,
    /// `DescribeLoadBalancers`, `RequestCertificate` (`other` when the proxy cannot tell).
    pub op: String,
    /// The fault answered instead of forwarding (`throttle`, `prior`, `error500`).
    pub fault: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The HTTP status the client got; `None` when it got no answer (its connection was closed).
    pub status: Option<u16>,
    /// False for the operations named `Get*`, `List*` or `Describe*`: what costs nothing in
    /// AWS's mutating-call quotas.
    pub write: bool,
    /// The parameters of a Query-protocol request (ELBv2, EC2, STS), e.g. `RoleSessionName`.
    pub params: std::collections::BTreeMap<String, String>,
}

/// A running proxy; stops when dropped (its stdin closes).
#[derive(Debug)]
pub struct FaultProxy {
    pub url: String,
    child: Child,
    _stdin: ChildStdin,
}

impl FaultProxy {
    /// A proxy in front of the environment's moto.
    pub fn start() -> Self {
        Self::start_with_upstream(&env().aws_endpoint)
    }

    /// A proxy in front of `upstream` (an `http://HOST:PORT` URL): a moto of a test's own.
    /// In front of the environment's moto, what it answers itself (faults, paced GetChange)
    /// goes to the environment's record too, beside what its recording proxy forwards.
    pub fn start_with_upstream(upstream: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/fault_proxy.py");
        let mut command = Command::new("python3");
        command.arg(&script).args(["--upstream", upstream]);
        if upstream == env().aws_endpoint {
            command.arg("--record-own").arg(&env().aws_operations);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fault proxy");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("proxy READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .expect("READY <port>")
            .to_owned();
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _stdin: stdin,
        }
    }

    /// Sets the share of requests answered with faults, e.g. `{"throttle": 0.3}`.
    pub async fn configure(&self, config: Value) {
        let (code, _) = http(
            "POST",
            &format!("{}/__proxy/config", self.url),
            &config.to_string(),
        )
        .await;
        assert_eq!(code, 200);
    }

    /// Paces Route 53 as AWS does: every ChangeResourceRecordSets sent from now on answers
    /// PENDING with an id of the proxy's, and GetChange of it answers PENDING until `seconds`
    /// after the change was sent, INSYNC afterwards. 0 turns it off (changes already sent keep
    /// their pace).
    pub async fn pending(&self, seconds: f64) {
        self.configure(serde_json::json!({ "pending_s": seconds }))
            .await;
    }

    /// Makes the proxy unreachable for `seconds`: it closes its port and every connection right
    /// after answering this call (new connections are refused, the SDK sees connection errors),
    /// then listens on the same port again.
    pub async fn refuse_for(&self, seconds: f64) {
        let (code, body) = http(
            "POST",
            &format!("{}/__proxy/config", self.url),
            &serde_json::json!({ "refuse_s": seconds }).to_string(),
        )
        .await;
        assert_eq!(code, 200, "refuse_for({seconds}): {body}");
    }

    /// Answers these operations 403 AccessDenied from now on (as IAM does what a policy does
    /// not grant); an empty list lets everything through again.
    pub async fn deny(&self, operations: &[&str]) {
        self.configure(serde_json::json!({ "deny": operations }))
            .await;
    }

    /// Every request seen, in arrival order.
    pub async fn requests(&self) -> Vec<ProxyRequest> {
        let (code, body) = http("GET", &format!("{}/__proxy/stats", self.url), "").await;
        assert_eq!(code, 200);
        let stats: Value = serde_json::from_str(&body).expect("stats json");
        stats["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .map(|r| ProxyRequest {
                t: r["t"].as_f64().unwrap_or_default(),
                op: r["op"].as_str().unwrap_or_default().to_owned(),
                fault: r["fault"].as_str().map(str::to_owned),
                method: r["method"].as_str().unwrap_or_default().to_owned(),
                status: r["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
                write: r["write"].as_bool().unwrap_or(true),
                params: r["params"]
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP client (python's urllib; the tests need no HTTP client crate): (status, body).
pub async fn http(method: &str, url: &str, body: &str) -> (u16, String) {
    let (method, url, body) = (method.to_owned(), url.to_owned(), body.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request,urllib.error\n\
                 data=sys.argv[3].encode() if sys.argv[3] else None\n\
                 req=urllib.request.Request(sys.argv[2], data=data, method=sys.argv[1])\n\
                 try:\n  r=urllib.request.urlopen(req,timeout=10); print(r.status); print(r.read().decode(),end='')\n\
                 except urllib.error.HTTPError as e:\n  print(e.code); print(e.read().decode(),end='')",
                &method,
                &url,
                &body,
            ])
            .output()
    })
    .await
    .expect("join")
    .expect("python3");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (code, body) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}
