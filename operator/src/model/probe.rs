//! One endpoint to probe and how: the unit the prober shares between GlobalIngresses.

use std::time::Duration;

use super::health::Thresholds;

/// How an endpoint is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
}

/// One unique endpoint and how it is probed. Every GlobalIngress whose target resolves to the
/// same spec shares one prober task.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeSpec {
    /// An IP address or a host name (resolved at every probe: a load balancer's addresses
    /// change).
    pub address: String,
    pub port: u16,
    pub protocol: Protocol,
    /// Host header and TLS server name.
    pub host: String,
    pub path: String,
    pub expected_status: Vec<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Validate the server certificate (HTTPS).
    pub verify_tls: bool,
}

impl ProbeSpec {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            healthy: self.healthy_threshold,
            unhealthy: self.unhealthy_threshold,
        }
    }

    /// `HTTP 192.0.2.1:80 Host: app.example.com /healthz`, for logs and messages.
    pub fn describe(&self) -> String {
        match self.protocol {
            Protocol::Tcp => format!("TCP {}:{}", self.address, self.port),
            Protocol::Http | Protocol::Https => format!(
                "{} {}:{} Host: {} {}",
                if self.protocol == Protocol::Http {
                    "HTTP"
                } else {
                    "HTTPS"
                },
                self.address,
                self.port,
                self.host,
                self.path
            ),
        }
    }
}
