//! The narrow port the zone writer uses: list a zone, apply one atomic batch of changes.

use futures::future::BoxFuture;

use super::records::{Change, Rrset};
use crate::reconcile::plan::ProviderKind;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused this batch as invalid: split it to find the change at fault.
    #[error("change refused: {message}")]
    Refused { message: String },
    /// Anything else (network, throttling after retries, server errors): try again later.
    #[error("provider unavailable: {message}")]
    Unavailable { message: String },
}

/// A DNS provider for one zone.
pub trait ZoneProvider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// The largest DNS message a batch may become, in bytes (estimated with
    /// `Change::wire_bytes`): an RFC 2136 update travels in one message of at most 65,535
    /// bytes; Route 53 batches are limited by values and characters instead.
    fn max_batch_bytes(&self) -> usize {
        usize::MAX
    }

    /// Every record set of the zone.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>>;

    /// Applies `changes` atomically and returns once the provider reports them in sync.
    fn apply<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, Result<Applied, ProviderError>>;
}

/// When an applied batch became visible, for the failover timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The provider reported the change in sync (Route 53 `INSYNC`; RFC 2136: the primary
    /// accepted the update).
    pub in_sync_at: Option<jiff::Timestamp>,
    /// The authoritative server answered with the new data (RFC 2136 only: the emulated
    /// Route 53 serves no DNS).
    pub answer_seen_at: Option<jiff::Timestamp>,
}
