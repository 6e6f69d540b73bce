//! AWS errors as what they are: throttled, timed out, unreachable, refused with a code — not
//! the SDK's "unhandled error" or "service error", which is all `Display` of a converted
//! `SdkError` says.

use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS call ended in (a bounded set, for logs and metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AWS asked to slow down (Throttling, PriorRequestNotComplete, ...) on every attempt.
    Throttled,
    /// An attempt took longer than its timeout.
    TimedOut,
    /// No answer: connection refused or reset, DNS, TLS.
    Unreachable,
    /// This replica does not hold the Lease: the write was not sent.
    NotLeader,
    /// No credentials to sign with (an assumed role refused, say): nothing was sent.
    NoCredentials,
    /// AWS answered with an error code.
    Refused,
    /// Anything else (an unreadable answer, a request that could not be built).
    Other,
}

/// Error codes AWS uses to ask for less (the SDK retries them; they reach us after the last
/// attempt).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "PriorRequestNotComplete",
    "SlowDown",
];

/// The kind of `error`.
pub fn kind<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Kind {
    match error {
        SdkError::TimeoutError(_) => Kind::TimedOut,
        SdkError::DispatchFailure(f) if f.is_timeout() => Kind::TimedOut,
        SdkError::DispatchFailure(f) if f.is_user() => {
            if is_not_leader(f.as_connector_error()) {
                Kind::NotLeader
            } else {
                Kind::Other
            }
        }
        SdkError::DispatchFailure(f) if credentials_error(f.as_connector_error()).is_some() => {
            Kind::NoCredentials
        }
        SdkError::DispatchFailure(_) => Kind::Unreachable,
        SdkError::ServiceError(_) => match error.code() {
            Some(code) if THROTTLING.contains(&code) => Kind::Throttled,
            _ => Kind::Refused,
        },
        SdkError::ResponseError(_) | SdkError::ConstructionFailure(_) => Kind::Other,
        _ => Kind::Other,
    }
}

fn is_not_leader(e: Option<&aws_smithy_runtime_api::client::result::ConnectorError>) -> bool {
    e.and_then(|e| std::error::Error::source(e))
        .is_some_and(|s| s.is::<super::budget::NotLeader>())
}

/// The credentials failure behind a dispatch failure: the SDK reports a credentials provider
/// that failed as a connector error of kind "other".
fn credentials_error(
    e: Option<&aws_smithy_runtime_api::client::result::ConnectorError>,
) -> Option<&CredentialsError> {
    let mut next: Option<&(dyn std::error::Error + 'static)> =
        e.and_then(|e| std::error::Error::source(e));
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

/// `<operation>: <what happened>` in one line, e.g. `ListResourceRecordSets: timed out`,
/// `ChangeResourceRecordSets: throttled by AWS (Throttling: Rate exceeded)`.
pub fn describe<E: ProvideErrorMetadata, R>(operation: &str, error: &SdkError<E, R>) -> String {
    let code = || {
        let code = error.code().unwrap_or("no error code");
        match error.message() {
            Some(m) if !m.is_empty() => format!("{code}: {m}"),
            _ => code.to_owned(),
        }
    };
    let what = match kind(error) {
        Kind::Throttled => format!("throttled by AWS after every retry ({})", code()),
        Kind::TimedOut => "timed out".to_owned(),
        Kind::Unreachable => match error {
            SdkError::DispatchFailure(f) => match f.as_connector_error() {
                Some(c) => format!("AWS not reachable ({})", crate::telemetry::error_chain(c)),
                None => "AWS not reachable".to_owned(),
            },
            _ => "AWS not reachable".to_owned(),
        },
        Kind::NotLeader => "not sent: this replica does not hold the Lease".to_owned(),
        Kind::NoCredentials => match error {
            SdkError::DispatchFailure(f) => match credentials_error(f.as_connector_error()) {
                Some(c) => format!(
                    "not sent, no credentials ({})",
                    crate::telemetry::error_chain(c)
                ),
                None => "not sent, no credentials".to_owned(),
            },
            _ => "not sent, no credentials".to_owned(),
        },
        Kind::Refused => code(),
        Kind::Other => match error {
            SdkError::ResponseError(_) => "the answer could not be read".to_owned(),
            SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
            _ => "failed".to_owned(),
        },
    };
    format!("{operation}: {what}")
}

#[cfg(test)]
mod tests {
    use aws_sdk_route53::operation::list_hosted_zones::ListHostedZonesError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    type Error = SdkError<ListHostedZonesError, Response>;

    fn service(code: &str, message: &str) -> Error {
        SdkError::service_error(
            ListHostedZonesError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            ),
            Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn errors_say_what_they_are_not_unhandled_error() {
        let throttled = service("Throttling", "Rate exceeded");
        assert_eq!(kind(&throttled), Kind::Throttled);
        assert_eq!(
            describe("ListHostedZones", &throttled),
            "ListHostedZones: throttled by AWS after every retry (Throttling: Rate exceeded)"
        );
        let timed_out = Error::timeout_error("attempt timeout");
        assert_eq!(kind(&timed_out), Kind::TimedOut);
        assert_eq!(describe("GetChange", &timed_out), "GetChange: timed out");
        let refused = service("InvalidChangeBatch", "bad");
        assert_eq!(kind(&refused), Kind::Refused);
        assert_eq!(
            describe("ChangeResourceRecordSets", &refused),
            "ChangeResourceRecordSets: InvalidChangeBatch: bad"
        );
        // A credentials provider that failed (an AssumeRole refused): nothing was sent.
        let no_credentials = Error::dispatch_failure(
            aws_smithy_runtime_api::client::result::ConnectorError::other(
                Box::new(CredentialsError::provider_error(
                    "cannot assume r: AccessDenied",
                )),
                None,
            ),
        );
        assert_eq!(kind(&no_credentials), Kind::NoCredentials);
        assert_eq!(
            describe("GetCallerIdentity", &no_credentials),
            "GetCallerIdentity: not sent, no credentials (an error occurred while loading \
             credentials: cannot assume r: AccessDenied)"
        );
        // What the converted error said before: the kind of failure is lost.
        assert_eq!(
            timed_out.into_service_error().to_string(),
            "unhandled error"
        );
    }
}
