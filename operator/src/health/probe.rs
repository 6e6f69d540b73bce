//! One probe through the data path: resolve the endpoint (system resolver or a configured DNS
//! server), connect, and for HTTP(S) send one request and read the status line.
//!
//! HTTP is spoken by hand (one `GET` with `Connection: close`, read until the status line): a
//! probe needs nothing else, and it keeps the prober free of connection pools that would hide a
//! dead load balancer behind a kept-alive connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_net::proto::rr::{Name, RData, RecordType};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub use crate::model::probe::{ProbeSpec, Protocol};

/// Where host names are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// The operating system's resolver.
    System,
    /// Ask this DNS server directly (tests map emulator load-balancer names to loopback
    /// addresses through the local Knot server).
    Server(SocketAddr),
}

/// Runs probes. Cheap to clone.
#[derive(Clone)]
pub struct Prober {
    resolver: Resolver,
    verified: tokio_rustls::TlsConnector,
    unverified: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

impl Prober {
    pub fn new(resolver: Resolver) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let verified = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let unverified = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        Self {
            resolver,
            verified: tokio_rustls::TlsConnector::from(Arc::new(verified)),
            unverified: tokio_rustls::TlsConnector::from(Arc::new(unverified)),
        }
    }

    /// Probes once. `Ok(detail)` when healthy, `Err(detail)` when not. The detail holds no
    /// timing, so that it only changes when the outcome does (it ends up in the status).
    pub async fn probe(&self, spec: &ProbeSpec) -> Result<String, String> {
        match tokio::time::timeout(spec.timeout, self.probe_inner(spec)).await {
            Ok(Ok(what)) => Ok(what),
            Ok(Err(why)) => Err(why),
            Err(_) => Err(format!("no answer within {}ms", spec.timeout.as_millis())),
        }
    }

    async fn probe_inner(&self, spec: &ProbeSpec) -> Result<String, String> {
        let ip = self.resolve(&spec.address).await?;
        let addr = SocketAddr::new(ip, spec.port);
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {}", short_io(&e)))?;
        let _ = tcp.set_nodelay(true);
        match spec.protocol {
            Protocol::Tcp => Ok(format!("TCP connect {addr}")),
            Protocol::Http => http_status(tcp, spec).await,
            Protocol::Https => {
                let name = ServerName::try_from(spec.host.clone())
                    .map_err(|_| format!("{:?} is not a valid TLS server name", spec.host))?;
                let connector = if spec.verify_tls {
                    &self.verified
                } else {
                    &self.unverified
                };
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS {addr}: {e}"))?;
                http_status(tls, spec).await
            }
        }
    }

    async fn resolve(&self, address: &str) -> Result<IpAddr, String> {
        if let Ok(ip) = address.parse::<IpAddr>() {
            return Ok(ip);
        }
        match self.resolver {
            Resolver::System => tokio::net::lookup_host((address, 0))
                .await
                .map_err(|e| format!("resolve {address}: {e}"))?
                .map(|a| a.ip())
                .next()
                .ok_or_else(|| format!("resolve {address}: no address")),
            Resolver::Server(server) => resolve_at(server, address).await,
        }
    }
}

/// Resolves `name` at `server` (A, then AAAA, following CNAMEs up to 8 times).
async fn resolve_at(server: SocketAddr, name: &str) -> Result<IpAddr, String> {
    let mut current =
        Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| e.to_string())?;
    for _ in 0..8 {
        for rtype in [RecordType::A, RecordType::AAAA] {
            let answer = crate::dns::query::authoritative(
                server,
                &current,
                rtype,
                Duration::from_millis(500),
            )
            .await
            .map_err(|e| format!("resolve {name} at {server}: {e}"))?;
            if let Some(ip) = answer.records.iter().find_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }) {
                return Ok(ip);
            }
        }
        let cname = crate::dns::query::authoritative(
            server,
            &current,
            RecordType::CNAME,
            Duration::from_millis(500),
        )
        .await
        .map_err(|e| format!("resolve {name} at {server}: {e}"))?;
        match cname.records.iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        }) {
            Some(next) => current = next,
            None => return Err(format!("resolve {name} at {server}: no address")),
        }
    }
    Err(format!("resolve {name}: CNAME chain too long"))
}

/// Sends one GET and checks the status line against the expected codes.
async fn http_status<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    spec: &ProbeSpec,
) -> Result<String, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: globalingress-prober\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        spec.path, spec.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {}", short_io(&e)))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {}", short_io(&e)))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| {
            if line.is_empty() {
                "connection closed before a response".to_owned()
            } else {
                format!("not an HTTP response: {line:?}")
            }
        })?;
    if spec.expected_status.contains(&code) {
        Ok(format!("HTTP {code}"))
    } else {
        Err(format!(
            "HTTP {code}, expected {}",
            spec.expected_status
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/")
        ))
    }
}

fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        _ => e.to_string(),
    }
}

/// Certificate validation off (`healthCheck.skipTlsVerify`): the handshake signatures are still
/// checked, the certificate chain and name are not.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn spec(port: u16, protocol: Protocol) -> ProbeSpec {
        ProbeSpec {
            address: "127.0.0.1".into(),
            port,
            protocol,
            host: "app.example.test".into(),
            path: "/healthz".into(),
            expected_status: vec![200],
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
            verify_tls: true,
        }
    }

    /// A one-shot HTTP server answering `status`; returns its port and the request it saw.
    async fn serve(status: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn http_probes_check_the_status_and_send_the_host_header() {
        let prober = Prober::new(Resolver::System);
        let (port, seen) = serve("200 OK").await;
        let ok = prober.probe(&spec(port, Protocol::Http)).await;
        assert!(
            ok.as_ref().is_ok_and(|d| d.starts_with("HTTP 200")),
            "{ok:?}"
        );
        let request = seen.await.unwrap();
        assert!(
            request.starts_with("GET /healthz HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("Host: app.example.test\r\n"), "{request}");

        let (port, _) = serve("503 Service Unavailable").await;
        let bad = prober.probe(&spec(port, Protocol::Http)).await;
        assert_eq!(bad, Err("HTTP 503, expected 200".to_owned()));
    }

    #[tokio::test]
    async fn refused_and_silent_endpoints_fail() {
        let prober = Prober::new(Resolver::System);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = prober.probe(&spec(port, Protocol::Tcp)).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("connection refused")),
            "{refused:?}"
        );
        // Accepts but never answers: the timeout decides.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let conn = silent.accept().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(conn);
        });
        let timed_out = prober.probe(&spec(port, Protocol::Http)).await;
        assert_eq!(timed_out, Err("no answer within 500ms".to_owned()));
        hold.abort();
        // TCP only needs the connection.
        let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = open.local_addr().unwrap().port();
        assert!(prober.probe(&spec(port, Protocol::Tcp)).await.is_ok());
    }
}
