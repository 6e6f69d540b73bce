//! DNS: RFC 2136 dynamic updates signed with TSIG, and direct authoritative queries.
//!
//! Route 53 is reached through the AWS SDK (`crate::aws`); this module speaks the DNS protocol
//! itself, with hickory-net, for self-hosted zones and for checking what authoritative servers
//! actually answer.

pub mod provider;
pub mod query;
pub mod records;
pub mod rfc2136;
pub mod rfc2136_zone;
pub mod route53;
pub mod tsig;
pub mod writers;
pub mod zone_writer;

pub use hickory_net::proto::rr::{Name, RData, Record, RecordType};

use hickory_net::DnsError;
use hickory_net::proto::op::ResponseCode;

/// The response code behind one of hickory's DNS errors: hickory reports error codes, and answers
/// that carry no records (NXDOMAIN, NODATA, every update response), as errors.
fn response_code(error: &DnsError) -> Option<ResponseCode> {
    match error {
        DnsError::ResponseCode(code) => Some(*code),
        DnsError::NoRecordsFound(none) => Some(none.response_code),
        _ => None,
    }
}
