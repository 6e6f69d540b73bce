//! The fault-injecting proxy (`tests/env/fault_proxy.py`) between the AWS SDK and moto.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::env;

/// A running proxy; stops when dropped (its stdin closes).
pub struct FaultProxy {
    pub url: String,
    child: Child,
    _stdin: ChildStdin,
}

impl FaultProxy {
    pub fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/fault_proxy.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--upstream", &env().aws_endpoint])
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

    /// Every request seen: (unix time, operation, fault).
    pub async fn requests(&self) -> Vec<(f64, String, Option<String>)> {
        let (code, body) = http("GET", &format!("{}/__proxy/stats", self.url), "").await;
        assert_eq!(code, 200);
        let stats: Value = serde_json::from_str(&body).expect("stats json");
        stats["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .map(|r| {
                (
                    r["t"].as_f64().unwrap_or_default(),
                    r["op"].as_str().unwrap_or_default().to_owned(),
                    r["fault"].as_str().map(str::to_owned),
                )
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
