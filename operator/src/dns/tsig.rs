//! TSIG keys (RFC 8945) for signing RFC 2136 updates.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_net::proto::rr::{Name, TSigner};

/// How far the signer's clock may differ from the server's, in seconds (RFC 8945 recommends 300).
const FUDGE_SECONDS: u16 = 300;

/// The HMAC algorithms hickory can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Ok(Self::HmacSha256),
            "hmac-sha384" => Ok(Self::HmacSha384),
            "hmac-sha512" => Ok(Self::HmacSha512),
            other => Err(Error::UnsupportedAlgorithm {
                algorithm: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        })
    }
}

impl From<Algorithm> for TsigAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            Algorithm::HmacSha384 => TsigAlgorithm::HmacSha384,
            Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }
}

/// Errors in TSIG key material. Messages never contain the secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported TSIG algorithm {algorithm:?} (use hmac-sha256, hmac-sha384 or hmac-sha512)"
    )]
    UnsupportedAlgorithm { algorithm: String },
    #[error("invalid TSIG key name {name:?}")]
    InvalidName {
        name: String,
        #[source]
        source: hickory_net::proto::ProtoError,
    },
    /// Only the position is kept: base64's own error names the offending byte, a piece of the
    /// secret.
    #[error("TSIG secret is not valid base64{}", at.map(|a| format!(" (at character {a})")).unwrap_or_default())]
    InvalidSecret { at: Option<usize> },
    #[error("TSIG secret is empty")]
    EmptySecret,
    #[error("failed to create the TSIG signer")]
    Signer {
        #[source]
        source: hickory_net::proto::dnssec::DnsSecError,
    },
}

/// A named TSIG key. `Debug` does not print the secret.
#[derive(Clone)]
pub struct TsigKey {
    name: Name,
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_string())
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// A key from its name, algorithm and base64 secret (the form knot.conf, BIND and
    /// `tsig-keygen` use).
    pub fn from_base64(name: &str, algorithm: Algorithm, secret_b64: &str) -> Result<Self, Error> {
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret_b64.trim())
            .map_err(|e| Error::InvalidSecret {
                at: match e {
                    base64::DecodeError::InvalidByte(at, _)
                    | base64::DecodeError::InvalidLastSymbol(at, _) => Some(at + 1),
                    base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                        None
                    }
                },
            })?;
        if secret.is_empty() {
            return Err(Error::EmptySecret);
        }
        let name = Name::from_str(name).map_err(|source| Error::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        Ok(Self {
            name,
            algorithm,
            secret,
        })
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A value that changes when the key changes (for caches keyed by key); not reversible to
    /// the secret in any useful way, and never printed.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.name.to_string().hash(&mut h);
        self.algorithm.to_string().hash(&mut h);
        self.secret.hash(&mut h);
        h.finish()
    }

    pub(crate) fn signer(&self) -> Result<TSigner, Error> {
        TSigner::new(
            self.secret.clone(),
            self.algorithm.into(),
            self.name.clone(),
            FUDGE_SECONDS,
        )
        .map_err(|source| Error::Signer { source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_parse_case_insensitively_and_refuse_weak_ones() {
        assert_eq!(
            "HMAC-SHA512.".parse::<Algorithm>().unwrap(),
            Algorithm::HmacSha512
        );
        assert!("hmac-md5".parse::<Algorithm>().is_err());
        assert!("hmac-sha1".parse::<Algorithm>().is_err());
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let key = TsigKey::from_base64("k.", Algorithm::HmacSha256, "c2VjcmV0LXZhbHVl").unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("redacted"));
        assert!(!printed.contains("c2VjcmV0"));
        assert!(!printed.contains("secret-value"));
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert!(matches!(
            TsigKey::from_base64("k.", Algorithm::HmacSha256, "!!"),
            Err(Error::InvalidSecret { .. })
        ));
        assert!(matches!(
            TsigKey::from_base64("k.", Algorithm::HmacSha256, ""),
            Err(Error::EmptySecret)
        ));
    }
}
