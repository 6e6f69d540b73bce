//! Direct queries to an authoritative server, recursion off: what the zone really answers now.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt as _;
use hickory_net::DnsHandle as _;
use hickory_net::client::Client;
use hickory_net::proto::op::{DnsRequest, DnsRequestOptions, Message, Query, ResponseCode};
use hickory_net::proto::rr::{Name, Record, RecordType};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;

/// Errors querying a server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to query {server}")]
    Exchange {
        server: SocketAddr,
        #[source]
        source: hickory_net::NetError,
    },
    #[error("no answer from {server}")]
    NoResponse { server: SocketAddr },
}

/// The answer of an authoritative server to one question.
#[derive(Debug, Clone)]
pub struct Answer {
    pub code: ResponseCode,
    pub records: Vec<Record>,
}

/// Asks `server` for `name`/`rtype` over UDP with recursion off, once.
pub async fn authoritative(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Answer, Error> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
        .with_timeout(Some(timeout))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let background = tokio::spawn(background);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = false;
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    let result = client.send(DnsRequest::new(message, options)).next().await;
    background.abort();
    let response = match result {
        None => return Err(Error::NoResponse { server }),
        Some(Ok(response)) => response,
        // NXDOMAIN and friends arrive as errors; they are answers all the same.
        Some(Err(hickory_net::NetError::Dns(dns))) if super::response_code(&dns).is_some() => {
            return Ok(Answer {
                code: super::response_code(&dns).unwrap_or(ResponseCode::ServFail),
                records: Vec::new(),
            });
        }
        Some(Err(source)) => return Err(Error::Exchange { server, source }),
    };
    Ok(Answer {
        code: response.metadata.response_code,
        records: response
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .cloned()
            .collect(),
    })
}
