//! Pass criteria: each one a name, a status and the figures it was judged on; and the memory
//! growth criterion of the soak.

use serde::Serialize;

/// How a criterion came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// The run could not judge it (too short, no local server to sample).
    Skip,
}

impl Status {
    pub fn of(pass: bool) -> Status {
        if pass {
            Status::Pass
        } else {
            Status::Fail
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub name: &'static str,
    pub status: Status,
    pub figures: String,
}

impl Criterion {
    pub fn new(name: &'static str, pass: bool, figures: String) -> Criterion {
        Criterion {
            name,
            status: Status::of(pass),
            figures,
        }
    }

    /// `PASS  name: figures`.
    pub fn line(&self) -> String {
        format!("{}  {}: {}", self.status.word(), self.name, self.figures)
    }
}

pub fn any_failed(criteria: &[Criterion]) -> bool {
    criteria.iter().any(|c| c.status == Status::Fail)
}

/// The largest growth of sampled server memory the soak accepts.
pub const MAX_MEMORY_GROWTH: f64 = 0.10;

/// Resident memory at one moment of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub t_s: f64,
    pub kib: u64,
}

/// Memory growth between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Growth {
    pub from: Point,
    pub to: Point,
    /// `to / from − 1`.
    pub growth: f64,
}

/// How late a sample may be taken and still count as taken at its time (timers fire late).
const SLACK_S: f64 = 1.0;

/// The growth from the last sample at or before `from_s` (up to [`SLACK_S`] late) to the last
/// sample of all. With restarts every R seconds and `from_s` a multiple of R, both are taken
/// just before a restart (or at the end), at the same age of the server, so the two compare
/// like with like. `None` without a sample at or before `from_s`, without a later one, or
/// from zero.
pub fn memory_growth(samples: &[Point], from_s: f64) -> Option<Growth> {
    let from = *samples.iter().rev().find(|p| p.t_s <= from_s + SLACK_S)?;
    let to = *samples.last()?;
    if to.t_s <= from.t_s || from.kib == 0 {
        return None;
    }
    Some(Growth {
        from,
        to,
        growth: to.kib as f64 / from.kib as f64 - 1.0,
    })
}

/// The criterion on [`memory_growth`]: below [`MAX_MEMORY_GROWTH`].
pub fn memory_criterion(name: &'static str, samples: &[Point], from_s: f64) -> Criterion {
    match memory_growth(samples, from_s) {
        None => Criterion {
            name,
            status: Status::Skip,
            figures: format!(
                "needs a sample at or before {from_s:.0} s and a later one ({} samples)",
                samples.len()
            ),
        },
        Some(g) => Criterion::new(
            name,
            g.growth < MAX_MEMORY_GROWTH,
            format!(
                "{:.1} MiB at {:.0} s → {:.1} MiB at {:.0} s: {:+.1}% (limit +{:.0}%)",
                g.from.kib as f64 / 1024.0,
                g.from.t_s,
                g.to.kib as f64 / 1024.0,
                g.to.t_s,
                g.growth * 100.0,
                MAX_MEMORY_GROWTH * 100.0
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t_s: f64, kib: u64) -> Point {
        Point { t_s, kib }
    }

    #[test]
    fn growth_from_the_last_sample_at_or_before_the_start() {
        let samples = [
            p(0.0, 50),
            p(110.0, 900),
            p(120.0, 1000),
            p(130.0, 400),
            p(600.0, 1090),
        ];
        let g = memory_growth(&samples, 120.0).unwrap();
        assert_eq!((g.from, g.to), (p(120.0, 1000), p(600.0, 1090)));
        assert!((g.growth - 0.09).abs() < 1e-12);
        // Between samples, the one before counts; one a little late counts as on time.
        assert_eq!(memory_growth(&samples, 125.0).unwrap().from, p(120.0, 1000));
        assert_eq!(memory_growth(&samples, 119.5).unwrap().from, p(120.0, 1000));
        assert_eq!(memory_growth(&samples, 118.9).unwrap().from, p(110.0, 900));
    }

    #[test]
    fn the_limit_is_strict() {
        let pass = memory_criterion("memory", &[p(120.0, 1000), p(600.0, 1099)], 120.0);
        assert_eq!(pass.status, Status::Pass);
        assert_eq!(
            pass.figures,
            "1.0 MiB at 120 s → 1.1 MiB at 600 s: +9.9% (limit +10%)"
        );
        let fail = memory_criterion("memory", &[p(120.0, 1000), p(600.0, 1100)], 120.0);
        assert_eq!(fail.status, Status::Fail);
        assert!(fail.line().starts_with("FAIL  memory: "));
        // Shrinking passes.
        let shrink = memory_criterion("memory", &[p(120.0, 1000), p(600.0, 500)], 120.0);
        assert_eq!(shrink.status, Status::Pass);
    }

    #[test]
    fn too_few_samples_skip() {
        for samples in [
            vec![],
            vec![p(121.5, 1000), p(600.0, 1000)],
            vec![p(120.0, 1000)],
            vec![p(100.0, 0), p(600.0, 1000)],
        ] {
            let c = memory_criterion("memory", &samples, 120.0);
            assert_eq!(c.status, Status::Skip, "{samples:?}");
        }
        assert!(!any_failed(&[memory_criterion("m", &[], 1.0)]));
        assert!(any_failed(&[Criterion::new("x", false, String::new())]));
    }
}
