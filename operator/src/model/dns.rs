//! The DNS vocabulary the plan and the DNS engine share: record sets as the plan wants them
//! ([`RecordSet`]) and as a zone holds them ([`Rrset`]), typed routing all the way from the spec
//! to the provider call.

use serde::{Deserialize, Serialize};

use super::stack::Ref;

/// Which kind of DNS provider a zone has (decides what the plan can express).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProviderKind {
    Route53,
    Rfc2136,
}

/// The zone the records go into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Domain without the trailing dot, lower case.
    pub domain: String,
    pub provider: ProviderKind,
    /// A Route 53 private hosted zone (Route 53's health checkers cannot reach its addresses).
    pub private: bool,
}

/// Record types. The plan publishes A, AAAA and CNAME (ALIAS records are A); the ownership
/// registry is TXT. Every other type a zone holds is [`RecordType::Other`] (its IANA code): the
/// zone writer sees it — a name holding one is not free — but never writes or deletes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    /// Only for the ownership registry at `_gi.<name>`.
    TXT,
    /// A type globalingress never writes (MX, NS, SRV, CAA, ...), by its IANA code.
    Other(u16),
}

impl RecordType {
    /// Types the plan may publish at a hostname (and so may replace or delete there).
    pub fn is_published(self) -> bool {
        matches!(self, Self::A | Self::AAAA | Self::CNAME)
    }
}

/// Route 53 continent codes.
#[derive(
    schemars::JsonSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
pub enum Continent {
    AF,
    AN,
    AS,
    EU,
    NA,
    OC,
    SA,
}

/// A geolocation of Route 53.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    /// `*`: every location no other record lists.
    Default,
    Continent(Continent),
    Country(String),
    Subdivision {
        country: String,
        subdivision: String,
    },
}

/// How a record set takes part in routing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase", tag = "policy")]
pub enum RecordRouting {
    /// A plain RRset (RFC 2136).
    Simple,
    Weighted {
        set_id: String,
        weight: u8,
    },
    Geolocation {
        set_id: String,
        location: Location,
    },
    Latency {
        set_id: String,
        region: String,
    },
    /// A routing policy globalingress never writes (failover, multivalue answer, CIDR, ...): a
    /// record someone else made, seen so its name counts as taken.
    Foreign {
        set_id: String,
    },
}

impl RecordRouting {
    /// The Route 53 set identifier (empty for a plain RRset).
    pub fn set_id(&self) -> &str {
        match self {
            Self::Simple => "",
            Self::Weighted { set_id, .. }
            | Self::Geolocation { set_id, .. }
            | Self::Latency { set_id, .. }
            | Self::Foreign { set_id } => set_id,
        }
    }
}

/// An ALIAS to an AWS resource (Route 53 only).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    pub dns_name: String,
    pub hosted_zone_id: String,
    pub evaluate_target_health: bool,
}

/// One record set the plan wants published.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSet {
    /// Fully qualified name without the trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub routing: RecordRouting,
    /// `None` for ALIAS records, which take the target's TTL.
    pub ttl: Option<u32>,
    /// Addresses or the CNAME target; empty for ALIAS records.
    pub values: Vec<String>,
    pub alias: Option<Alias>,
    /// The Route 53 health check to attach (Route 53 then fails the record over by itself, even
    /// while the operator is down): a reference to a resource of the same plan, resolved when
    /// the health checks have been applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Ref>,
    /// The targets whose traffic this record carries.
    pub targets: Vec<String>,
}

/// Identity of a record set in a zone: name, type and (Route 53) set identifier.
pub type Key = (String, RecordType, Option<String>);

/// A record set as stored in a zone. Values are in presentation format, TXT values quoted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Rrset {
    /// Lower case, no trailing dot.
    pub name: String,
    pub rtype: RecordType,
    pub routing: RecordRouting,
    pub ttl: Option<u32>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
    /// Route 53 health check attached to the record set.
    pub health_check_id: Option<String>,
}

impl Rrset {
    pub fn key(&self) -> Key {
        let set_id = match &self.routing {
            RecordRouting::Simple => None,
            other => Some(other.set_id().to_owned()),
        };
        (self.name.clone(), self.rtype, set_id)
    }

    /// Whether this record set is of a kind the plan publishes at a hostname (A, AAAA, CNAME
    /// with a routing policy we write): only those may be replaced or deleted at a name we own.
    pub fn is_published_kind(&self) -> bool {
        self.rtype.is_published() && !matches!(self.routing, RecordRouting::Foreign { .. })
    }

    /// Characters this record set adds to a Route 53 change batch (its limit is 32,000).
    pub fn size_chars(&self) -> usize {
        self.values.iter().map(String::len).sum::<usize>()
            + self.alias.as_ref().map_or(0, |a| a.dns_name.len())
    }

    /// Values this record set adds to a change batch (its limit is 1,000; an alias counts 1).
    pub fn size_values(&self) -> usize {
        self.values.len().max(1)
    }

    /// The zone's form of a planned record set, with the health check `health_check_id` (the
    /// resolved [`RecordSet::health_check`]).
    pub fn from_planned(r: &RecordSet, health_check_id: Option<String>) -> Self {
        let mut values = r.values.clone();
        values.sort();
        Self {
            name: r.name.trim_end_matches('.').to_ascii_lowercase(),
            rtype: r.rtype,
            routing: r.routing.clone(),
            ttl: r.ttl,
            values,
            alias: r.alias.clone(),
            health_check_id,
        }
    }
}
