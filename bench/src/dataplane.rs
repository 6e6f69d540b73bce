//! Loopback data planes: tiny HTTP servers standing in for a region's app + ingress + load
//! balancer, which the benchmark stops (connections refused) and restarts. A copy of the
//! integration tests' `support/dataplane.rs`, without the flapping mode.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::bail;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One region's data plane on `ip:port`, answering 200 to anything.
#[derive(Debug)]
pub struct DataPlane {
    pub addr: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl DataPlane {
    /// Serves on every address in `ips` at one port free on all of them (load balancers in
    /// different regions share a port).
    pub async fn start_many(ips: &[&str]) -> anyhow::Result<Vec<DataPlane>> {
        for _ in 0..20 {
            let port = std::net::TcpListener::bind((ips[0], 0))?
                .local_addr()?
                .port();
            let mut planes = Vec::new();
            for ip in ips {
                let plane = DataPlane {
                    addr: format!("{ip}:{port}").parse()?,
                    task: Mutex::new(None),
                };
                if plane.try_start().await.is_err() {
                    break;
                }
                planes.push(plane);
            }
            if planes.len() == ips.len() {
                return Ok(planes);
            }
        }
        bail!("no port free on every one of {ips:?}")
    }

    async fn try_start(&self) -> std::io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                        .await;
                });
            }
        });
        let old = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task);
        if let Some(old) = old {
            old.abort();
        }
        Ok(())
    }

    /// Stops listening: connections are refused from the moment this returns.
    pub async fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.stop().await;
        for _ in 0..50 {
            if self.try_start().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("cannot listen on {} again", self.addr)
    }

    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
