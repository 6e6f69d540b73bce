//! A real Prometheus (Debian's `prometheus` package, installed by `tests/env/install.sh`) scraping
//! operators every second, for queries the shipped dashboard and alerts use.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::proxy::http;

/// One Prometheus process with storage of its own; killed when dropped.
pub struct Prometheus {
    pub url: String,
    _child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `/metrics` of each `host:port` in `targets` every second, and
    /// waits until it is ready.
    pub async fn start(targets: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(super::unique_name("prometheus"));
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: globalingress\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect(
                "start prometheus (Debian package prometheus: tests/env/install.sh installs it)",
            );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if http("GET", &format!("{url}/-/ready"), "").await.0 == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus not ready after 60 s; log:\n{}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self {
            url,
            _child: child,
            dir,
        }
    }

    /// The instant vector `expr` evaluates to now (panics on a query error, which names a
    /// syntax error or a bad function).
    pub async fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let body = format!("query={}", urlencode(expr));
        let (code, text) = http("POST", &format!("{}/api/v1/query", self.url), &body).await;
        assert_eq!(code, 200, "query {expr}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text).expect("query JSON");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Where its configuration, data and log are.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
