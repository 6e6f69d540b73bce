//! One zone writer per DNSZone, created on first use and replaced when the zone's spec or its
//! TSIG Secret changes; and what it takes to reach an RFC 2136 zone (its server and TSIG key).
//!
//! A reconcile costs no reads: the TSIG Secret is read when the writer is made, when the
//! DNSZone's spec changes, and again at most every [`SECRET_RECHECK`] (a rotated key replaces the
//! writer then) — not on every publish, which cost one hub request per reconcile and held every
//! reconcile of an RFC 2136 zone on the hub while it was down.

use std::collections::HashMap;
use std::sync::Arc;

use kube::ResourceExt as _;
use tokio::sync::Mutex;

use crate::api::DNSZone;
use crate::api::dns_zone::{Rfc2136Provider, TsigAlgorithm};
use crate::dns::provider::ZoneProvider;
use crate::dns::rfc2136_zone::Rfc2136Zone;
use crate::dns::route53::Route53Zone;
use crate::dns::tsig::{Algorithm, TsigKey};
use crate::dns::zone_writer::{self, ZoneWriter};
use crate::secrets::{self, SecretKey};

/// How long a writer is used without reading its zone's TSIG Secret again.
pub const SECRET_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// A writer and what it was made from.
struct Entry {
    fingerprint: String,
    writer: ZoneWriter,
    /// The DNSZone's generation when the writer was made or last checked.
    generation: Option<i64>,
    checked_at: std::time::Instant,
}

/// The writers of every zone this process writes to.
pub struct ZoneWriters {
    client: kube::Client,
    aws: crate::aws::Aws,
    config: zone_writer::Config,
    /// Local address of connections to RFC 2136 servers (`--dns-bind-address`).
    bind: Option<std::net::IpAddr>,
    writers: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for ZoneWriters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneWriters").finish_non_exhaustive()
    }
}

impl ZoneWriters {
    pub fn new(
        client: kube::Client,
        aws: crate::aws::Aws,
        config: zone_writer::Config,
        bind: Option<std::net::IpAddr>,
    ) -> Self {
        Self {
            client,
            aws,
            config,
            bind,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The writer for `zone`; errors are (condition reason, message).
    pub async fn for_zone(&self, zone: &DNSZone) -> Result<ZoneWriter, (&'static str, String)> {
        let name = zone.name_any();
        if let Some(entry) = self.writers.lock().await.get(&name)
            && entry.generation == zone.metadata.generation
            && entry.checked_at.elapsed() < SECRET_RECHECK
        {
            return Ok(entry.writer.clone());
        }
        let domain = zone.spec.domain.trim_end_matches('.').to_ascii_lowercase();
        let (fingerprint, provider): (String, Option<Arc<dyn ZoneProvider>>) =
            match (&zone.spec.provider.route53, &zone.spec.provider.rfc2136) {
                (Some(r53), _) => (format!("route53:{}", r53.hosted_zone_id), None),
                (None, Some(p)) => {
                    let (server, key) = rfc2136_access(p, &self.client).await?;
                    // A rotated TSIG secret changes the fingerprint and so replaces the writer.
                    (
                        format!("rfc2136:{server}:{domain}:{:x}", key.fingerprint()),
                        Some(Arc::new(
                            Rfc2136Zone::new(server, &domain, key, self.bind)
                                .map_err(|e| ("InvalidZone", e.to_string()))?,
                        )),
                    )
                }
                (None, None) => {
                    return Err(("NoProvider", "spec.provider: set route53 or rfc2136".into()));
                }
            };
        let mut writers = self.writers.lock().await;
        if let Some(entry) = writers.get_mut(&name)
            && entry.fingerprint == fingerprint
        {
            entry.generation = zone.metadata.generation;
            entry.checked_at = std::time::Instant::now();
            return Ok(entry.writer.clone());
        }
        let provider = match (provider, &zone.spec.provider.route53) {
            (Some(p), _) => p,
            (None, Some(r53)) => {
                Arc::new(Route53Zone::new(self.aws.route53(), &r53.hosted_zone_id))
                    as Arc<dyn ZoneProvider>
            }
            (None, None) => {
                return Err(("NoProvider", "spec.provider: set route53 or rfc2136".into()));
            }
        };
        let writer = ZoneWriter::spawn(provider, self.config.clone());
        writers.insert(
            name,
            Entry {
                fingerprint,
                writer: writer.clone(),
                generation: zone.metadata.generation,
                checked_at: std::time::Instant::now(),
            },
        );
        Ok(writer)
    }

    /// The writer of `zone` if one runs (no Secret is read, nothing is started).
    pub async fn existing(&self, zone: &str) -> Option<ZoneWriter> {
        self.writers
            .lock()
            .await
            .get(zone)
            .map(|e| e.writer.clone())
    }
}

/// What an RFC 2136 DNSZone needs to be reached: the server's address and the TSIG key from
/// its Secret. Errors are (condition reason, message), never containing the secret.
pub async fn rfc2136_access(
    p: &Rfc2136Provider,
    client: &kube::Client,
) -> Result<(std::net::SocketAddr, TsigKey), (&'static str, String)> {
    let r = &p.tsig_secret_ref;
    let at = SecretKey {
        namespace: &r.namespace,
        name: &r.name,
        key: &r.key,
    };
    let bytes = secrets::read(client, at, &secrets::TSIG).await?;
    let secret_b64 = std::str::from_utf8(&bytes).map_err(|e| {
        (
            "TsigKeyInvalid",
            format!(
                "{at}: not text (at byte {})",
                e.valid_up_to().saturating_add(1)
            ),
        )
    })?;
    let algorithm = match p.algorithm {
        TsigAlgorithm::HmacSha256 => Algorithm::HmacSha256,
        TsigAlgorithm::HmacSha384 => Algorithm::HmacSha384,
        TsigAlgorithm::HmacSha512 => Algorithm::HmacSha512,
    };
    // The key's errors name positions and the key's name only (see `tsig::Error`).
    let key = TsigKey::from_base64(&p.tsig_key_name, algorithm, secret_b64)
        .map_err(|e| ("TsigKeyInvalid", format!("{at}: {e}")))?;
    let server = resolve(&p.server)
        .await
        .map_err(|m| ("ServerUnresolvable", m))?;
    Ok((server, key))
}

async fn resolve(server: &str) -> Result<std::net::SocketAddr, String> {
    let with_port = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_owned()
    } else {
        format!("{server}:53")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("cannot resolve {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server} resolves to no address"))
}
