//! What `/proc` says about a child process, phase by phase: CPU seconds spent and the peak
//! resident set since the phase began.

use std::sync::OnceLock;

/// User + system CPU seconds `pid` has used so far (`/proc/PID/stat` utime + stime); `None` once
/// it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    // Fields from there: 3 state, ..., 14 utime, 15 stime.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// Whether `pid` still runs (a zombie waiting to be reaped does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

/// Resets `pid`'s peak resident set (VmHWM) to its current one (Linux `clear_refs` 5), so the
/// peak read at the end of a phase is that phase's. False when the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The machine's 1-minute load average (0 when unknown): other work on the machine skews every
/// figure, so the tables show it.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `getconf CLK_TCK` (the unit of utime and stime), 100 when it cannot be asked.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process() {
        let me = std::process::id();
        assert!(alive(me));
        let spent = cpu_seconds(me).unwrap();
        assert!(spent >= 0.0);
        assert!(!alive(u32::MAX));
        assert!(cpu_seconds(u32::MAX).is_none());
    }
}
