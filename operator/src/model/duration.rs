//! Durations as Kubernetes objects and flags write them (`500ms`, `15s`, `2m`, `1m30s`).
//!
//! One parser for the whole operator: the command line's flags and the spec's strings. The API
//! server's pattern admits only what [`parse`] reads, so the typed accessors of the API types
//! (`HealthCheck::interval`, `Failover::failback_after`, ...) never see a malformed value; they
//! fall back to the field's default for objects stored before a rule existed.

use std::time::Duration;

/// Parses `500ms`, `15s`, `2m`, `1h`, or combinations such as `1m30s`.
pub fn parse(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{s:?}: expected a number, e.g. 15s"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubernetes_writes_them() {
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse("15").is_err());
        assert!(parse("fast").is_err());
    }
}
