//! RFC 2136 dynamic updates over TCP, signed with TSIG.
//!
//! An [`Update`] is data: the zone, the prerequisites that must hold on the server, and the changes.
//! The server applies all of it or none of it, so prerequisites are how a writer refuses to
//! overwrite a record somebody else changed since it last looked.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt as _;
use hickory_net::client::Client;
use hickory_net::proto::op::{
    DnsRequest, DnsRequestOptions, Message, OpCode, Query, ResponseCode, UpdateMessage as _,
};
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::{DnsHandle as _, DnsMultiplexer};

use super::tsig::{self, TsigKey};

/// Errors talking RFC 2136 to a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to connect to {server}")]
    Connect {
        server: SocketAddr,
        #[source]
        source: hickory_net::NetError,
    },
    #[error("failed to prepare the TSIG signer")]
    Tsig {
        #[source]
        source: tsig::Error,
    },
    #[error("failed to exchange the update with {server}")]
    Exchange {
        server: SocketAddr,
        #[source]
        source: hickory_net::NetError,
    },
    #[error("no response to the update from {server}")]
    NoResponse { server: SocketAddr },
    #[error("{server} refused the update: {code}")]
    Refused {
        server: SocketAddr,
        code: ResponseCode,
    },
}

impl Error {
    /// The server's answer, when it answered with an error code (NOTAUTH for a bad key, YXRRSET /
    /// NXRRSET when a prerequisite failed, REFUSED by policy).
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One atomic RFC 2136 update of one zone.
#[derive(Debug, Clone)]
pub struct Update {
    zone: Name,
    prerequisites: Vec<Record>,
    changes: Vec<Record>,
}

impl Update {
    pub fn new(zone: Name) -> Self {
        Self {
            zone,
            prerequisites: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Prerequisite (RFC 2136 §2.4.3): no RRset of this name and type exists.
    pub fn require_absent(&mut self, name: Name, rtype: RecordType) -> &mut Self {
        let mut r = Record::update0(name, 0, rtype);
        r.dns_class = DNSClass::NONE;
        self.prerequisites.push(r);
        self
    }

    /// Prerequisite (§2.4.1): an RRset of this name and type exists (any value).
    pub fn require_exists(&mut self, name: Name, rtype: RecordType) -> &mut Self {
        let mut r = Record::update0(name, 0, rtype);
        r.dns_class = DNSClass::ANY;
        self.prerequisites.push(r);
        self
    }

    /// Prerequisite (§2.4.2): the RRset of these records' name and type holds exactly them.
    pub fn require_exactly(&mut self, records: impl IntoIterator<Item = Record>) -> &mut Self {
        for mut r in records {
            r.ttl = 0;
            r.dns_class = DNSClass::IN;
            self.prerequisites.push(r);
        }
        self
    }

    /// Change (§2.5.2): delete the whole RRset of this name and type.
    pub fn delete_rrset(&mut self, name: Name, rtype: RecordType) -> &mut Self {
        let mut r = Record::update0(name, 0, rtype);
        r.dns_class = DNSClass::ANY;
        self.changes.push(r);
        self
    }

    /// Change (§2.5.4): delete one record (name, type and data) from its RRset.
    pub fn delete_record(&mut self, mut record: Record) -> &mut Self {
        record.ttl = 0;
        record.dns_class = DNSClass::NONE;
        self.changes.push(record);
        self
    }

    /// Change (§2.5.1): add a record to its RRset.
    pub fn add(&mut self, mut record: Record) -> &mut Self {
        record.dns_class = DNSClass::IN;
        self.changes.push(record);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub(crate) fn into_message(self) -> Message {
        let mut zone = Query::new();
        zone.set_name(self.zone)
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.recursion_desired = false;
        message.add_zone(zone);
        message.add_pre_requisites(self.prerequisites);
        message.add_updates(self.changes);
        message
    }
}

/// A TSIG-signing RFC 2136 client over one TCP connection.
#[derive(Clone)]
pub struct UpdateClient {
    server: SocketAddr,
    client: Client<TokioRuntimeProvider>,
}

impl std::fmt::Debug for UpdateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateClient")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl UpdateClient {
    /// Connects over TCP (updates can be large, and TCP has no truncation) from `bind` (any
    /// local address when `None`) and signs every message with `key`. The connection's
    /// background task is spawned on the current tokio runtime.
    pub async fn connect(
        server: SocketAddr,
        key: &TsigKey,
        timeout: Duration,
        bind: Option<std::net::IpAddr>,
    ) -> Result<Self, Error> {
        let signer = key.signer().map_err(|source| Error::Tsig { source })?;
        let (stream, handle) = TcpClientStream::new(
            server,
            bind.map(|ip| SocketAddr::new(ip, 0)),
            Some(timeout),
            TokioRuntimeProvider::new(),
        );
        let stream = stream
            .await
            .map_err(|source| Error::Connect { server, source })?;
        let multiplexer = DnsMultiplexer::new(stream, handle)
            .with_timeout(timeout)
            .with_signer(signer);
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(multiplexer);
        tokio::spawn(background);
        Ok(Self { server, client })
    }

    /// Sends one update; `Ok` only when the server answered NOERROR.
    pub async fn send(&self, update: Update) -> Result<(), Error> {
        self.exchange(update.into_message()).await.map(|_| ())
    }

    /// The whole zone by AXFR (signed: hickory signs zone transfers).
    pub async fn transfer(&self, zone: &Name) -> Result<Vec<Record>, Error> {
        use hickory_net::client::ClientHandle as _;
        let server = self.server;
        let mut client = self.client.clone();
        let mut stream = client.zone_transfer(zone.clone(), None);
        let mut out = Vec::new();
        while let Some(response) = stream.next().await {
            let response = response.map_err(|source| Error::Exchange { server, source })?;
            out.extend(response.answers.iter().cloned());
        }
        Ok(out)
    }

    /// Proves the key may update `zone` without changing it: an update whose only content is
    /// the prerequisite "the zone's SOA exists". The server checks the signature and its update
    /// policy first, so a wrong key or a key without update rights is refused here.
    pub async fn verify_update_rights(&self, zone: &Name) -> Result<(), Error> {
        let mut probe = Update::new(zone.clone());
        probe.require_exists(zone.clone(), RecordType::SOA);
        self.exchange(probe.into_message()).await.map(|_| ())
    }

    /// A query (recursion off): the records of `name`/`rtype`, empty for NODATA or NXDOMAIN.
    /// hickory signs only updates, notifies and zone transfers, so this query is not signed.
    pub async fn query(&self, name: &Name, rtype: RecordType) -> Result<Vec<Record>, Error> {
        let mut message = Message::query();
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(name.clone(), rtype));
        match self.exchange(message).await {
            Ok(records) => Ok(records
                .into_iter()
                .filter(|r| r.record_type() == rtype)
                .collect()),
            Err(Error::Refused {
                code: ResponseCode::NXDomain,
                ..
            }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn exchange(&self, message: Message) -> Result<Vec<Record>, Error> {
        let server = self.server;
        let mut options = DnsRequestOptions::default();
        options.recursion_desired = false;
        let request = DnsRequest::new(message, options);
        let mut responses = self.client.send(request);
        let mut answers = Vec::new();
        let code = match responses.next().await {
            None => return Err(Error::NoResponse { server }),
            Some(Ok(response)) => {
                answers = response.answers.clone();
                response.metadata.response_code
            }
            // hickory turns error codes (and answers without records, which every update response
            // is) into errors; keep the code, it is what callers act on.
            Some(Err(hickory_net::NetError::Dns(dns))) => match super::response_code(&dns) {
                Some(code) => code,
                None => {
                    return Err(Error::Exchange {
                        server,
                        source: hickory_net::NetError::Dns(dns),
                    });
                }
            },
            Some(Err(source)) => return Err(Error::Exchange { server, source }),
        };
        match code {
            ResponseCode::NoError => Ok(answers),
            code => Err(Error::Refused { server, code }),
        }
    }
}

/// An A, AAAA, CNAME or TXT record, for callers that do not want hickory's types.
pub fn record(name: Name, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name, ttl, data)
}
