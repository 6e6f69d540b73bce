//! Ownership: how everything globalingress creates outside Kubernetes says who made it.
//!
//! AWS resources carry four tags, set **in the create call itself** where the API allows it (so
//! a crash can never leave an untagged resource behind) and matched on every list (never a
//! remembered id):
//!
//! | tag | value |
//! |---|---|
//! | `globalingress.io/owner` | the hub: the DNSZone's `spec.ownerId` |
//! | `globalingress.io/globalingress` | the GlobalIngress, `namespace/name` |
//! | `globalingress.io/target` | the target's name within it |
//! | `globalingress.io/resource` | which resource of that target (`healthcheck`, …) |
//!
//! A resource without our owner tag, or with another hub's, is never updated or deleted.
//! DNS records cannot carry tags: a TXT registry record beside each name says the same (see
//! `dns::records`), and set identifiers carry [`set_id_tag`] of the GlobalIngress.
//!
//! Tag values are at most 256 characters at AWS: [`tag_value`] shortens longer ones with a
//! hash, and tags are always compared through it.

use std::fmt::Write as _;

/// The hub that owns a resource (the DNSZone's `spec.ownerId`).
pub const TAG_OWNER: &str = "globalingress.io/owner";
/// The GlobalIngress a resource serves, `namespace/name`.
pub const TAG_GLOBALINGRESS: &str = "globalingress.io/globalingress";
/// The target of that GlobalIngress.
pub const TAG_TARGET: &str = "globalingress.io/target";
/// Which of the target's resources this is (`healthcheck`, later `loadbalancer`, …).
pub const TAG_RESOURCE: &str = "globalingress.io/resource";
/// The console's display name: `<namespace>/<name>/<target>`.
pub const TAG_NAME: &str = "Name";

/// Resource ids of [`TAG_RESOURCE`].
pub mod resources {
    pub const HEALTH_CHECK: &str = "healthcheck";
}

/// AWS accepts tag values of at most 256 characters (Route 53, ELBv2, ACM, EC2 alike).
pub const MAX_TAG_VALUE: usize = 256;

/// The key of a GlobalIngress as an owner of records and resources: `namespace/name`.
pub fn owner_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's hasher), for names and
/// references derived from ownership.
pub fn hash64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// FNV-1a, 32 bits. Only for [`set_id_tag`], whose value is already in published set
/// identifiers and must not change.
fn hash32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// The short tag of an owner (`namespace/name`) in its record sets' set identifiers
/// (`<target>.<8 hex>`): this object's record sets can never be mistaken for another's or a
/// foreign record's with the same target name. `None` for no owner.
pub fn set_id_tag(owner: &str) -> Option<String> {
    (!owner.is_empty()).then(|| format!("{:08x}", hash32(owner.as_bytes())))
}

/// A tag value for `value`: itself when AWS accepts it, else a prefix and a hash of the whole.
pub fn tag_value(value: &str) -> String {
    shorten(value, MAX_TAG_VALUE)
}

/// `value` when it has at most `max` characters, else its first characters, `~` and 16 hex
/// digits of its [`hash64`].
pub fn shorten(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_owned();
    }
    let mut out: String = value.chars().take(max.saturating_sub(17)).collect();
    let _ = write!(out, "~{:016x}", hash64(value.as_bytes()));
    out
}

/// The ownership tags of one resource, as written.
pub fn tags(
    owner: &str,
    global_ingress: &str,
    target: &str,
    resource: &str,
) -> Vec<(String, String)> {
    vec![
        (TAG_OWNER.to_owned(), tag_value(owner)),
        (TAG_GLOBALINGRESS.to_owned(), tag_value(global_ingress)),
        (TAG_TARGET.to_owned(), tag_value(target)),
        (TAG_RESOURCE.to_owned(), tag_value(resource)),
        (
            TAG_NAME.to_owned(),
            tag_value(&format!("{global_ingress}/{target}")),
        ),
    ]
}

/// Our tags on a resource, as read back (tag values, see [`tag_value`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub owner: Option<String>,
    pub global_ingress: Option<String>,
    pub target: Option<String>,
    pub resource: Option<String>,
}

impl Tags {
    /// Picks our keys out of a resource's tags.
    ///
    /// Health checks made before the tag names were settled carry the GlobalIngress in
    /// `globalingress.io/resource` and no `globalingress.io/globalingress`: read that as the
    /// GlobalIngress, so those checks stay ours (and are never mistaken for orphans).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut tags = Self::default();
        for (key, value) in pairs {
            let slot = match key {
                TAG_OWNER => &mut tags.owner,
                TAG_GLOBALINGRESS => &mut tags.global_ingress,
                TAG_TARGET => &mut tags.target,
                TAG_RESOURCE => &mut tags.resource,
                _ => continue,
            };
            *slot = Some(value.to_owned());
        }
        if tags.global_ingress.is_none() {
            tags.global_ingress = tags.resource.take();
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_id_tags_keep_their_published_value() {
        // Already in published set identifiers: changing the hash would republish every record.
        assert_eq!(set_id_tag("shop/web").as_deref(), Some("eb78a544"));
        assert_eq!(set_id_tag(""), None);
    }

    #[test]
    fn long_tag_values_are_shortened_with_a_hash() {
        let long = "x".repeat(300);
        let short = tag_value(&long);
        assert_eq!(short.chars().count(), MAX_TAG_VALUE);
        assert_ne!(short, tag_value(&"x".repeat(301)));
        assert_eq!(tag_value("shop/web"), "shop/web");
    }

    #[test]
    fn legacy_tags_still_name_the_global_ingress() {
        let legacy = Tags::from_pairs([
            (TAG_OWNER, "hub"),
            ("globalingress.io/resource", "shop/web"),
            (TAG_TARGET, "eu"),
        ]);
        assert_eq!(legacy.global_ingress.as_deref(), Some("shop/web"));
        assert_eq!(legacy.resource, None);
        let current = Tags::from_pairs(
            tags("hub", "shop/web", "eu", resources::HEALTH_CHECK)
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert_eq!(current.global_ingress.as_deref(), Some("shop/web"));
        assert_eq!(current.resource.as_deref(), Some("healthcheck"));
    }
}
