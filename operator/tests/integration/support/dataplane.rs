//! Loopback data planes: tiny HTTP servers standing in for a region's app + ingress + load
//! balancer, which a test can stop (connections refused), restart, or make flap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// How the data plane answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// 200 OK.
    Ok = 0,
    /// Alternates 200 and 503, request by request.
    Flap = 1,
}

/// One region's data plane on `ip:port`.
pub struct DataPlane {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicU64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl DataPlane {
    /// Serves on `ip` at a port that is free on every address in `ips` (so several regions can
    /// share one port, as load balancers in different regions do).
    pub async fn start_many(ips: &[&str]) -> Vec<DataPlane> {
        'retry: for _ in 0..100 {
            let first = std::net::TcpListener::bind((ips[0], 0)).expect("bind loopback");
            let port = first.local_addr().expect("local addr").port();
            drop(first);
            let mut planes = Vec::new();
            for ip in ips {
                let addr: SocketAddr = format!("{ip}:{port}").parse().expect("address");
                let plane = DataPlane {
                    addr,
                    mode: Arc::new(AtomicU8::new(Mode::Ok as u8)),
                    requests: Arc::new(AtomicU64::new(0)),
                    task: Mutex::new(None),
                };
                if plane.try_start().await.is_err() {
                    continue 'retry;
                }
                planes.push(plane);
            }
            return planes;
        }
        panic!("no port free on every one of {ips:?} after 100 tries");
    }

    async fn try_start(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let mode = self.mode.clone();
        let requests = self.requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let ok = match mode.load(Ordering::SeqCst) {
                    0 => true,
                    _ => n.is_multiple_of(2),
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf).await;
                    let status = if ok {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let _ = conn
                        .write_all(
                            format!("HTTP/1.1 {status}\r\nContent-Length: 3\r\n\r\nok\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        *self.task.lock().await = Some(task);
        Ok(())
    }

    /// Stops listening: connections are refused until [`DataPlane::restart`].
    pub async fn stop(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn restart(&self) {
        self.stop().await;
        for _ in 0..50 {
            if self.try_start().await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("cannot listen on {} again", self.addr);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
