//! A TCP proxy (`tests/env/tcp_proxy.py`) between a client and a server (a kube-apiserver: TLS
//! passes through untouched). It can black-hole every connection without closing any, as a
//! network partition does (the client sees no error, only silence, until its own timeouts fire),
//! or close them all at once.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::proxy::http;

/// A running proxy; killed when dropped (its stdin, the lifeline, closes too).
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    control_port: u16,
    child: Child,
    _stdin: ChildStdin,
}

impl TcpProxy {
    /// A proxy to `upstream`: `HOST:PORT`, or a URL such as a cluster's `GI_URL`
    /// (`https://127.0.0.1:PORT`), of which only the address counts.
    pub fn start(upstream: &str) -> TcpProxy {
        let address = upstream
            .split_once("://")
            .map_or(upstream, |(_, rest)| rest)
            .trim_end_matches('/');
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/tcp_proxy.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--upstream", address])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("tcp proxy READY line");
        let ports: Vec<u16> = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| {
                panic!("tcp proxy to {address}: expected READY <port> <control_port>, got {line:?}")
            })
            .split_whitespace()
            .map(|p| p.parse().expect("a port number"))
            .collect();
        let [port, control_port] = ports.as_slice() else {
            panic!("tcp proxy to {address}: expected READY <port> <control_port>, got {line:?}");
        };
        TcpProxy {
            port: *port,
            control_port: *control_port,
            child,
            _stdin: stdin,
        }
    }

    /// The port clients connect to, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `on`: no byte moves on any connection, existing or new (new ones are still accepted);
    /// nothing is closed, so senders block as in a partition. `off`: forwarding resumes where it
    /// stopped. Applied when this returns.
    pub async fn blackhole(&self, on: bool) {
        let (code, body) = http(
            "POST",
            &self.control("/blackhole"),
            &serde_json::json!({ "on": on }).to_string(),
        )
        .await;
        assert_eq!(code, 200, "tcp proxy blackhole({on}): {body}");
    }

    fn control(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.control_port)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes to `out` a copy of the kubeconfig `original` (as the harness writes it) whose cluster
/// server URL goes to `port` on the same host: the same credentials, through a [`TcpProxy`].
pub fn kubeconfig_via(original: &Path, port: u16, out: &Path) {
    let text = std::fs::read_to_string(original)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", original.display()));
    let mut rewritten = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            // `    server: https://127.0.0.1:PORT`
            let Some((indent, url)) = line.split_once("server: ") else {
                return line.to_owned();
            };
            let Some((base, old_port)) = url.trim().rsplit_once(':') else {
                return line.to_owned();
            };
            if !indent.trim().is_empty() || !old_port.chars().all(|c| c.is_ascii_digit()) {
                return line.to_owned();
            }
            rewritten += 1;
            format!("{indent}server: {base}:{port}")
        })
        .collect();
    assert!(
        rewritten > 0,
        "no `server: <scheme>://<host>:<port>` line in {}",
        original.display()
    );
    std::fs::write(out, lines.join("\n") + "\n")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
