//! The narrow port the zone writer uses: list a zone, submit one atomic batch of changes, ask
//! whether a submitted change is in sync.

use futures::future::BoxFuture;

use super::records::{Change, Rrset};
use crate::model::dns::ProviderKind;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused this batch as invalid: split it to find the change at fault.
    #[error("change refused: {message}")]
    Refused { message: String },
    /// The zone does not exist at the provider (Route 53 `NoSuchHostedZone`): nothing can be
    /// written to it, and nothing of ours can be in it.
    #[error("{message}")]
    ZoneNotFound { message: String },
    /// Anything else (network, throttling after retries, server errors): try again later.
    #[error("provider unavailable: {message}")]
    Unavailable { message: String },
}

/// A batch the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Submitted {
    /// The provider's id of the change, to ask [`ZoneProvider::in_sync`] about (Route 53's
    /// `ChangeInfo.Id`); `None` when `applied` already says everything.
    pub change_id: Option<String>,
    /// What is already known of the change becoming visible.
    pub applied: Applied,
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

/// A DNS provider for one zone.
pub trait ZoneProvider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// The largest DNS message a batch may become, in bytes (counted with
    /// [`ZoneProvider::change_bytes`]): an RFC 2136 update travels in one message of at most
    /// 65,535 bytes; Route 53 batches are limited by values and characters instead.
    fn max_batch_bytes(&self) -> usize {
        usize::MAX
    }

    /// The bytes `change` adds to a batch, towards [`ZoneProvider::max_batch_bytes`].
    fn change_bytes(&self, _change: &Change) -> usize {
        0
    }

    /// Every record set of the zone (types we never write included, as
    /// [`crate::model::dns::RecordType::Other`]).
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rrset>, ProviderError>>;

    /// Submits `changes` as one atomic batch; returns once the provider accepted it (not once it
    /// is in sync: Route 53 takes tens of seconds for that).
    fn submit<'a>(
        &'a self,
        changes: &'a [Change],
    ) -> BoxFuture<'a, Result<Submitted, ProviderError>>;

    /// Whether the change `id` (from [`Submitted::change_id`]) is in sync.
    fn in_sync<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, ProviderError>>;
}
