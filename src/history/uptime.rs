//! Uptime from transitions, exactly: the share of observed time a subject
//! spent `ok` or `degraded` within a window. Observed time is, per run of
//! redpulse, from the subject's first verdict in that run to the run's end
//! (its last flush, or now for the running one): time while redpulse was
//! not running, or not yet watching the subject, is not counted.

use super::db::Transition;
use crate::judge::outcome::Status;

/// Seconds spent up and seconds observed within a window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Share {
    pub up_ms: i64,
    pub observed_ms: i64,
}

impl Share {
    /// The uptime ratio, None when nothing was observed.
    pub fn ratio(&self) -> Option<f64> {
        (self.observed_ms > 0).then(|| self.up_ms as f64 / self.observed_ms as f64)
    }
}

/// Whether a status counts as up.
pub fn is_up(s: Status) -> bool {
    matches!(s, Status::Ok | Status::Degraded)
}

/// Each transition's status with the time it started and the time it held
/// until: the next transition of the same run, or the run's end.
/// Transitions of runs not in `runs` are skipped.
fn spans<'a>(
    transitions: &'a [Transition],
    runs: &'a [(i64, i64, i64)],
) -> impl Iterator<Item = (Status, i64, i64)> + 'a {
    transitions.iter().enumerate().filter_map(move |(i, t)| {
        let &(_, _, run_end) = runs.iter().find(|r| r.0 == t.run)?;
        let until = transitions[i + 1..]
            .iter()
            .find(|n| n.run == t.run)
            .map_or(run_end, |n| n.at_ms)
            .min(run_end);
        Some((t.to, t.at_ms, until))
    })
}

/// The share within [from_ms, to_ms]. `transitions` are the subject's,
/// oldest first (including the last one before `from_ms`); `runs` are
/// (id, started_ms, end_ms) with the running one's end already `to_ms`.
pub fn share(
    transitions: &[Transition],
    runs: &[(i64, i64, i64)],
    from_ms: i64,
    to_ms: i64,
) -> Share {
    let mut out = Share::default();
    for (status, at, until) in spans(transitions, runs) {
        let start = at.max(from_ms);
        let end = until.min(to_ms);
        if end > start {
            out.observed_ms += end - start;
            if is_up(status) {
                out.up_ms += end - start;
            }
        }
    }
    out
}

/// Worst status per cell of `cell_ms` over [from_ms, to_ms), from the
/// transitions alone (None: not observed in that cell).
pub fn cells(
    transitions: &[Transition],
    runs: &[(i64, i64, i64)],
    from_ms: i64,
    to_ms: i64,
    cell_ms: i64,
) -> Vec<Option<Status>> {
    let n = ((to_ms - from_ms) / cell_ms).max(0) as usize;
    let mut out = vec![None; n];
    for (status, at, until) in spans(transitions, runs) {
        let until = until.min(to_ms);
        let start = at.max(from_ms);
        // A status that held for an instant still marks its cell.
        if until < start || (until == start && at < from_ms) {
            continue;
        }
        let first = ((start - from_ms) / cell_ms) as usize;
        let last = (((until - from_ms - 1).max(start - from_ms)) / cell_ms) as usize;
        for cell in out
            .iter_mut()
            .take(last.min(n.saturating_sub(1)) + 1)
            .skip(first)
        {
            *cell = Some(cell.map_or(status, |c: Status| c.max(status)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::record::Kind;

    fn t(run: i64, at_s: i64, from: Option<Status>, to: Status) -> Transition {
        Transition {
            kind: Kind::Instance,
            name: "x".into(),
            at_ms: at_s * 1000,
            from,
            to,
            reason: None,
            error: None,
            run,
        }
    }

    /// A hand-made timeline (seconds):
    ///   run 1 from 0 to 1000: first verdict ok at 10, down at 100,
    ///     degraded at 160, ok at 400; redpulse stops at 1000.
    ///   not running 1000..2000.
    ///   run 2 from 2000: first verdict critical at 2005, ok at 2105;
    ///     now is 3000.
    /// Observed: 990 s in run 1, 995 s in run 2 = 1985 s.
    /// Up: ok 10..100 (90) + degraded 160..400 (240) + ok 400..1000 (600)
    ///     + ok 2105..3000 (895) = 1825 s. Uptime = 1825 / 1985.
    #[test]
    fn uptime_matches_a_hand_computed_timeline() {
        use Status::*;
        let ts = vec![
            t(1, 10, None, Ok),
            t(1, 100, Some(Ok), Down),
            t(1, 160, Some(Down), Degraded),
            t(1, 400, Some(Degraded), Ok),
            t(2, 2005, None, Critical),
            t(2, 2105, Some(Critical), Ok),
        ];
        let runs = [(1, 0, 1_000_000), (2, 2_000_000, 3_000_000)];
        let whole = share(&ts, &runs, 0, 3_000_000);
        assert_eq!(
            whole,
            Share {
                up_ms: 1_825_000,
                observed_ms: 1_985_000
            }
        );
        assert!((whole.ratio().unwrap() - 1825.0 / 1985.0).abs() < 1e-12);
        // The last 1000 s: 2000..3000, run 2 only: 995 observed, 895 up.
        let last = share(&ts[3..], &runs, 2_000_000, 3_000_000);
        assert_eq!(
            last,
            Share {
                up_ms: 895_000,
                observed_ms: 995_000
            }
        );
        // A window inside the outage: 120..150 is all down.
        assert_eq!(share(&ts, &runs, 120_000, 150_000).ratio(), Some(0.0));
        // While redpulse did not run, nothing was observed.
        assert_eq!(share(&ts, &runs, 1_100_000, 1_900_000).ratio(), None);
        // Cells of 500 s over 0..3000: worst status in each.
        let c = cells(&ts, &runs, 0, 3_000_000, 500_000);
        assert_eq!(
            c,
            vec![Some(Down), Some(Ok), None, None, Some(Critical), Some(Ok)]
        );
    }
}
