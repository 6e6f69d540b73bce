//! One zone writer per DNSZone, created on first use and replaced when the zone's spec or its
//! TSIG Secret changes.

use std::collections::HashMap;
use std::sync::Arc;

use kube::ResourceExt as _;
use tokio::sync::Mutex;

use super::dns_zone::rfc2136_access;
use crate::api::DNSZone;
use crate::dns::provider::ZoneProvider;
use crate::dns::rfc2136_zone::Rfc2136Zone;
use crate::dns::route53::Route53Zone;
use crate::dns::zone_writer::{self, ZoneWriter};

/// The writers of every zone this process writes to.
pub struct ZoneWriters {
    client: kube::Client,
    aws: crate::aws::Aws,
    config: zone_writer::Config,
    writers: Mutex<HashMap<String, (String, ZoneWriter)>>,
}

impl std::fmt::Debug for ZoneWriters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneWriters").finish_non_exhaustive()
    }
}

impl ZoneWriters {
    pub fn new(client: kube::Client, aws: crate::aws::Aws, config: zone_writer::Config) -> Self {
        Self {
            client,
            aws,
            config,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The writer for `zone`; errors are (condition reason, message).
    pub async fn for_zone(&self, zone: &DNSZone) -> Result<ZoneWriter, (&'static str, String)> {
        let name = zone.name_any();
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
                            Rfc2136Zone::new(server, &domain, key)
                                .map_err(|e| ("InvalidZone", e.to_string()))?,
                        )),
                    )
                }
                (None, None) => {
                    return Err(("NoProvider", "spec.provider: set route53 or rfc2136".into()));
                }
            };
        let mut writers = self.writers.lock().await;
        if let Some((existing, writer)) = writers.get(&name)
            && *existing == fingerprint
        {
            return Ok(writer.clone());
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
        writers.insert(name, (fingerprint, writer.clone()));
        Ok(writer)
    }
}
