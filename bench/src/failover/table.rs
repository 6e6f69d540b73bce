//! The failover scenario's tables: one per provider, what the benchmark saw and what the
//! operator says it did.

use super::{KNOT_SAMPLE, Outcome, Provider, Repeat};
use crate::observe::OperatorTimes;
use crate::stats::Summary;

pub(super) fn print(provider: Provider, rows: &[&Outcome]) {
    if rows.is_empty() {
        return;
    }
    println!();
    match provider {
        Provider::Knot => {
            println!(
                "Failover, Knot (RFC 2136): region a down -> authoritative answer without a, seconds"
            );
            println!(
                "  names asked: every GlobalIngress up to N = {}, else a fixed random sample of {KNOT_SAMPLE}; \
                 each asked every 20 ms (<= 10 names) or 50 ms",
                2 * KNOT_SAMPLE
            );
        }
        Provider::Route53 => {
            println!(
                "Failover, Route 53 (emulator): region a down -> record of a at weight 0, seconds"
            );
            println!(
                "  the whole zone listed (paginated) every ~150 ms plus the listing's own time; every GlobalIngress observed"
            );
        }
    }
    let calls = match provider {
        Provider::Knot => "zone updates/event",
        Provider::Route53 => "Change calls/event",
    };
    println!(
        "  {:>5} {:>5} {:>5} | {:^27} | {:^27} | {:>9} | {:^18}{}",
        "N",
        "names",
        "reps",
        "first name changed",
        "last name changed",
        "up->back",
        calls,
        if provider == Provider::Route53 {
            " | all R53 calls/event | listing"
        } else {
            ""
        }
    );
    println!(
        "  {:>5} {:>5} {:>5} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>9} | {:>8} {:>9}{}",
        "",
        "",
        "",
        "p50",
        "p95",
        "p99",
        "max",
        "p50",
        "p95",
        "p99",
        "max",
        "p50",
        "failover",
        "failback",
        if provider == Provider::Route53 {
            " | failover failback  |   mean s"
        } else {
            ""
        }
    );
    for o in rows {
        if o.repeats.is_empty() {
            println!(
                "  {:>5} {:>5} {:>5} | no repeat finished (see below)",
                o.size,
                o.observed,
                format!("0/{}", o.failed.len())
            );
            continue;
        }
        let col = |f: fn(&Repeat) -> f64| -> Vec<f64> { o.repeats.iter().map(f).collect() };
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (fo, fb) = match provider {
            Provider::Knot => (
                mean(col(|r| r.failover.knot_updates)),
                mean(col(|r| r.failback.knot_updates)),
            ),
            Provider::Route53 => (
                mean(col(|r| r.failover.change_calls)),
                mean(col(|r| r.failback.change_calls)),
            ),
        };
        let extra = if provider == Provider::Route53 {
            format!(
                " | {:>8.1} {:>8.1}  | {:>8.2}",
                mean(col(|r| r.failover.route53_calls)),
                mean(col(|r| r.failback.route53_calls)),
                mean(col(|r| r.listing.unwrap_or(f64::NAN)))
            )
        } else {
            String::new()
        };
        println!(
            "  {:>5} {:>5} {:>5} | {} | {} | {:>9.2} | {:>8.1} {:>9.1}{extra}",
            o.size,
            o.observed,
            format!("{}/{}", o.repeats.len(), o.repeats.len() + o.failed.len()),
            Summary::columns(Summary::of(&col(|r| r.first))),
            Summary::columns(Summary::of(&col(|r| r.last))),
            Summary::of(&col(|r| r.back)).map_or(f64::NAN, |s| s.p50),
            fo,
            fb,
        );
    }
    let done = match provider {
        Provider::Knot => "detected -> answer seen",
        Provider::Route53 => "detected -> in sync",
    };
    println!(
        "  the operator's own timeline (status.lastFailover of every GlobalIngress, all repeats), seconds"
    );
    println!(
        "  {:>5} {:>7} | {:^27} | {:^27} | {:^27}",
        "N", "samples", "region down -> detected", done, "region down -> that"
    );
    for o in rows.iter().filter(|o| !o.repeats.is_empty()) {
        let all: Vec<&OperatorTimes> = o.repeats.iter().flat_map(|r| &r.operator).collect();
        let detected: Vec<f64> = all.iter().map(|t| t.detected).collect();
        let done: Vec<f64> = all.iter().filter_map(|t| t.done).collect();
        let total: Vec<f64> = all
            .iter()
            .filter_map(|t| t.done.map(|d| t.detected + d))
            .collect();
        println!(
            "  {:>5} {:>7} | {} | {} | {}",
            o.size,
            all.len(),
            Summary::columns(Summary::of(&detected)),
            Summary::columns(Summary::of(&done)),
            Summary::columns(Summary::of(&total)),
        );
    }
    for o in rows.iter().filter(|o| !o.failed.is_empty()) {
        println!(
            "  N={}: {} repeat(s) did not finish and are not in the percentiles; the first: {}",
            o.size,
            o.failed.len(),
            o.failed[0]
        );
    }
    println!(
        "  (percentiles by nearest rank: over 20 repeats p95 is the 2nd largest and p99 the largest; \
         run times: {})",
        rows.iter()
            .map(|o| format!("N={} {:.0}s", o.size, o.elapsed.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
