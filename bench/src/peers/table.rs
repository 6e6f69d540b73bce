//! The peers scenario's tables: per phase, one row per measure, one column per run, and each
//! external-dns run's ratio to globalingress's.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Phase, Run};
use crate::external_dns::{self, Variant};

/// What the tables are about.
pub struct Header<'a> {
    pub size: usize,
    pub idle: u64,
    pub timeout: u64,
    pub external_dns: &'a Path,
    pub version: &'a str,
}

pub fn print(h: &Header<'_>) {
    println!();
    println!(
        "globalingress beside external-dns {} ({}): N={} hostnames x 3 weighted A records (TTL {}), \
         Route 53 on moto, one hosted zone, namespace and counting proxy per run",
        h.version,
        h.external_dns.display(),
        h.size,
        super::TTL
    );
    println!(
        "  globalingress: N GlobalIngresses, 3 External targets, routing Weighted, healthCheck None; \
         `globalingress run --watch-namespace NS --lease-namespace NS --resync-interval 60s --selector bench.globalingress.io/run=NS`, GLOBALINGRESS_LOG=warn, \
         keys of the hub.json user"
    );
    println!(
        "  external-dns:  N DNSEndpoints, 3 endpoints each (setIdentifier a/b/c, aws/weight); \
         AWS_ENDPOINT_URL=<its proxy> AWS_REGION=us-east-1, admin keys; flags of both runs:"
    );
    println!(
        "    {}",
        external_dns::common_flags("NS", "DOMAIN", "ZONE", "HUB", "127.0.0.1:PORT").join(" ")
    );
    for v in [Variant::Shipped, Variant::Tuned] {
        let flags = v.flags().join(" ");
        println!(
            "    {:<16} {}",
            format!("{}:", v.label()),
            if flags.is_empty() {
                "nothing more: its defaults, --interval=1m, Kubernetes client 5 requests/s burst 10 \
                 (client-go's), no --events"
                    .to_owned()
            } else {
                flags
            }
        );
    }
    println!(
        "  phases: cold (the N objects exist, the tool starts; until every name holds its 3 records), \
         change (every weight of every object moves; until every name shows it), idle ({} s, nothing changes)",
        h.idle
    );
    println!(
        "  calls: from the phase's start until 3 s without a call after convergence; CPU: utime+stime; \
         peak RSS: VmHWM, reset at each phase's start; a phase gives up after {} s",
        h.timeout
    );
}

/// The three phases' tables.
pub fn phases(size: usize, runs: &[Run]) {
    let titles = ["cold", "change touching every object", "idle"];
    for (k, title) in titles.into_iter().enumerate() {
        let phases: Vec<&Phase> = runs.iter().map(|r| r.phases()[k]).collect();
        println!();
        let mut head = format!("{title:<32}");
        for r in runs {
            head += &format!(" {:>16}", r.label);
        }
        for r in runs.iter().skip(1) {
            head += &format!(" {:>12}", format!("{}/gi", short(r.label)));
        }
        println!("{head}");
        let seconds = |p: &Phase| Cell {
            value: p.seconds,
            text: time(p, size, title == "idle"),
            lower_bound: !p.done && title != "idle",
        };
        if title == "idle" {
            plain_row("length (s)", &phases, seconds);
            plain_row("names still right", &phases, |p| Cell {
                value: p.matched as f64,
                text: format!("{}/{size}", p.matched),
                lower_bound: false,
            });
        } else {
            row("converged after (s)", &phases, seconds);
        }
        row("Route 53 calls", &phases, |p| count(p.calls.values().sum()));
        let ops: BTreeSet<&String> = phases.iter().flat_map(|p| p.calls.keys()).collect();
        for op in ops {
            row(&format!("  {op}"), &phases, |p| {
                count(p.calls.get(op).copied().unwrap_or(0))
            });
        }
        row("CPU (s)", &phases, |p| Cell {
            value: p.cpu,
            text: format!("{:.2}", p.cpu),
            lower_bound: false,
        });
        row("peak RSS (MiB)", &phases, |p| Cell {
            value: p.rss,
            text: format!("{:.0}", p.rss),
            lower_bound: false,
        });
        plain_row("machine load (1 min) at end", &phases, |p| Cell {
            value: p.load,
            text: format!("{:.2}", p.load),
            lower_bound: false,
        });
    }
    println!();
    println!(
        "(ratios: the external-dns run's figure / globalingress's; > where the external-dns run did not \
         converge, so its figure is a lower bound; inf where globalingress's figure is 0)"
    );
}

fn short(label: &str) -> &str {
    label.strip_prefix("ext-dns ").unwrap_or(label)
}

struct Cell {
    value: f64,
    text: String,
    /// The run gave up: its value is at least this.
    lower_bound: bool,
}

fn count(n: usize) -> Cell {
    Cell {
        value: n as f64,
        text: n.to_string(),
        lower_bound: false,
    }
}

fn time(p: &Phase, size: usize, idle: bool) -> String {
    let exited = if p.exited { ", exited" } else { "" };
    if idle || p.done {
        format!("{:.1}{exited}", p.seconds)
    } else {
        format!(">{:.0} ({}/{size}{exited})", p.seconds, p.matched)
    }
}

fn row(label: &str, phases: &[&Phase], cell: impl Fn(&Phase) -> Cell) {
    row_of(label, phases, true, cell);
}

/// A row without ratios (the idle phase's length, the names still right).
fn plain_row(label: &str, phases: &[&Phase], cell: impl Fn(&Phase) -> Cell) {
    row_of(label, phases, false, cell);
}

fn row_of(label: &str, phases: &[&Phase], ratios: bool, cell: impl Fn(&Phase) -> Cell) {
    let cells: Vec<Cell> = phases.iter().map(|p| cell(p)).collect();
    let mut line = format!("{label:<32}");
    for c in &cells {
        line += &format!(" {:>16}", c.text);
    }
    if let Some((ours, others)) = cells.split_first().filter(|_| ratios) {
        for c in others {
            line += &format!(" {:>12}", ratio(ours, c));
        }
    }
    println!("{line}");
}

fn ratio(ours: &Cell, theirs: &Cell) -> String {
    if ours.lower_bound {
        return "-".to_owned();
    }
    let bound = if theirs.lower_bound { ">" } else { "" };
    if ours.value == 0.0 {
        if theirs.value == 0.0 {
            "=".to_owned()
        } else {
            format!("{bound}inf")
        }
    } else {
        format!("{bound}{:.2}x", theirs.value / ours.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: f64, lower_bound: bool) -> Cell {
        Cell {
            value,
            text: String::new(),
            lower_bound,
        }
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(&cell(2.0, false), &cell(5.0, false)), "2.50x");
        assert_eq!(ratio(&cell(2.0, false), &cell(5.0, true)), ">2.50x");
        assert_eq!(ratio(&cell(0.0, false), &cell(5.0, false)), "inf");
        assert_eq!(ratio(&cell(0.0, false), &cell(0.0, false)), "=");
        assert_eq!(ratio(&cell(1.0, true), &cell(5.0, false)), "-");
    }
}
