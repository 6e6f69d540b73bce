//! Percentiles of a handful of samples.

/// p50 / p95 / p99 / max of some samples (nearest rank: with 20 samples p95 is the 19th
/// smallest and p99 the largest).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = sorted.len();
            let i = ((p / 100.0) * n as f64).ceil() as usize;
            sorted[i.clamp(1, n) - 1]
        };
        Some(Self {
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }

    /// `p50 p95 p99 max`, each right-aligned in 6 columns, or dashes.
    pub fn columns(s: Option<Self>) -> String {
        match s {
            Some(s) => format!(
                "{:>6.2} {:>6.2} {:>6.2} {:>6.2}",
                s.p50, s.p95, s.p99, s.max
            ),
            None => format!("{:>6} {:>6} {:>6} {:>6}", "-", "-", "-", "-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        let sum = Summary::of(&s).unwrap();
        assert_eq!(
            (sum.p50, sum.p95, sum.p99, sum.max),
            (10.0, 19.0, 20.0, 20.0)
        );
        let one = Summary::of(&[3.0]).unwrap();
        assert_eq!((one.p50, one.p99), (3.0, 3.0));
        assert!(Summary::of(&[]).is_none());
    }
}
