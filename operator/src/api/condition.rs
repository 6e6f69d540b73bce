//! Status conditions with the standard Kubernetes fields, and the rules for updating them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A standard status condition (the fields of `metav1.Condition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One PascalCase word saying why.
    pub reason: String,
    /// What happened and what to do about it, for people.
    #[serde(default)]
    pub message: String,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}

/// Condition status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

/// A condition as the reconciler wants it, before times are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: Status,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// Merges desired conditions into the existing ones: `lastTransitionTime` moves only when a
/// condition's status changes; conditions not in `desired` are kept as they are. Output is
/// sorted by type so the result is stable.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &str,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let previous = existing.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == d.status.as_str() => p.last_transition_time.clone(),
            _ => now.to_owned(),
        };
        out.push(Condition {
            type_: d.type_.to_owned(),
            status: d.status.as_str().to_owned(),
            reason: d.reason.to_owned(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Conditions equal apart from their transition times (Linkerd's
/// `eq_time_insensitive_conditions`): a status patch that would change only times is skipped.
pub fn eq_ignoring_time(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
                && x.observed_generation == y.observed_generation
        })
}

/// Looks up a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: Status, reason: &'static str) -> Desired {
        Desired::new("Ready", status, reason, "m")
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = merge(&[], &[ready(Status::False, "Pending")], Some(1), "t1");
        assert_eq!(first[0].last_transition_time, "t1");
        let same_status = merge(&first, &[ready(Status::False, "Other")], Some(2), "t2");
        assert_eq!(same_status[0].last_transition_time, "t1");
        assert_eq!(same_status[0].reason, "Other");
        assert_eq!(same_status[0].observed_generation, Some(2));
        let flipped = merge(&same_status, &[ready(Status::True, "Ready")], Some(2), "t3");
        assert_eq!(flipped[0].last_transition_time, "t3");
    }

    #[test]
    fn unrelated_conditions_are_kept_and_output_is_sorted() {
        let a = merge(
            &[],
            &[
                Desired::new("Ready", Status::True, "R", ""),
                Desired::new("DNSSynced", Status::True, "S", ""),
            ],
            None,
            "t",
        );
        assert_eq!(a[0].type_, "DNSSynced");
        let b = merge(
            &a,
            &[Desired::new("Ready", Status::False, "X", "")],
            None,
            "t2",
        );
        assert_eq!(b.len(), 2);
        assert!(find(&b, "DNSSynced").is_some());
    }

    #[test]
    fn time_only_differences_compare_equal() {
        let a = merge(&[], &[ready(Status::True, "R")], Some(1), "t1");
        let mut b = a.clone();
        b[0].last_transition_time = "t9".into();
        assert!(eq_ignoring_time(&a, &b));
        b[0].reason = "Other".into();
        assert!(!eq_ignoring_time(&a, &b));
    }
}
