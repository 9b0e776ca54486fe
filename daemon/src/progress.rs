//! The headless progress line: every few seconds of the run, how far a finite source
//! has read, as people expect of long work (`progress: 3/10 files, 1.2 GiB of 4.0 GiB
//! (30%), 85.0 MiB/s, 42s left`), and once more when it is read to its end.

use std::time::Duration;

use brigade_controller::units::format_bytes;
use brigade_controller::{Progress, Snapshot};

/// When the next progress line is due, from the snapshots' own clock.
#[derive(Debug)]
pub(crate) struct ProgressLog {
    /// Seconds of pipeline time between two lines; `None`: no lines.
    every_s: Option<f64>,
    /// Pipeline time and bytes read at the last line (or the first progress seen).
    last: Option<(f64, u64)>,
    /// The line saying the source is read to its end has been given.
    ended: bool,
}

impl ProgressLog {
    /// A line every `every` of pipeline time; `None` (or zero) for none.
    pub(crate) fn new(every: Option<Duration>) -> Self {
        Self {
            every_s: every.filter(|e| !e.is_zero()).map(|e| e.as_secs_f64()),
            last: None,
            ended: false,
        }
    }

    /// The line to log for `snapshot`, if one is due: none while the source cannot
    /// say how far it got, then one when `every` has passed since the last (the rate
    /// is the bytes read in between), and one when the source is read to its end.
    pub(crate) fn take(&mut self, snapshot: &Snapshot) -> Option<String> {
        let every_s = self.every_s?;
        let source = &snapshot.global.source;
        let progress = source.progress?;
        if self.ended {
            return None;
        }
        if source.exhausted {
            self.ended = true;
            return Some(line(&progress, None, true));
        }
        let Some((at_s, done)) = self.last else {
            self.last = Some((snapshot.at_s, progress.bytes_done));
            return None;
        };
        let span = snapshot.at_s - at_s;
        if span < every_s {
            return None;
        }
        let rate = progress.bytes_done.saturating_sub(done) as f64 / span;
        self.last = Some((snapshot.at_s, progress.bytes_done));
        Some(line(&progress, Some(rate), false))
    }
}

/// `progress: 3/10 files, 1.2 GiB of 4.0 GiB (30%), 85.0 MiB/s, 42s left`, with what
/// is known; at the end, `…, read to its end` instead of the rate.
pub(crate) fn line(progress: &Progress, bytes_per_s: Option<f64>, ended: bool) -> String {
    let mut parts = vec![files_and_bytes(progress)];
    if ended {
        parts.push("read to its end".to_owned());
    } else if let Some(rate) = bytes_per_s {
        parts.push(format!("{}/s", format_bytes(rate.max(0.0) as u64)));
        match progress.eta_s(rate) {
            Some(left) => parts.push(format!("{} left", duration(left))),
            None if progress.bytes_total.is_some() => parts.push("stalled".to_owned()),
            None => {}
        }
    }
    format!("progress: {}", parts.join(", "))
}

/// `3/10 files, 1.2 GiB of 4.0 GiB (30%)`, or as much of it as is known (`1.2 GiB`
/// from a stream): also the report's words for the source's final progress.
pub(crate) fn files_and_bytes(progress: &Progress) -> String {
    // A source without files (a stream) says none done of no total: nothing to say.
    let files = match progress.files_total {
        Some(total) => Some(format!("{}/{total} files", progress.files_done)),
        None => (progress.files_done > 0).then(|| format!("{} files", progress.files_done)),
    };
    let bytes = match (progress.bytes_total, progress.fraction()) {
        (Some(total), Some(fraction)) => format!(
            "{} of {} ({:.0}%)",
            format_bytes(progress.bytes_done),
            format_bytes(total),
            fraction * 100.0
        ),
        _ => format_bytes(progress.bytes_done),
    };
    match files {
        Some(files) => format!("{files}, {bytes}"),
        None => bytes,
    }
}

/// A time left: `42s`, `2m03s`, `1h02m`.
fn duration(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    match (whole / 3600, whole % 3600 / 60, whole % 60) {
        (0, 0, secs) => format!("{secs}s"),
        (0, mins, secs) => format!("{mins}m{secs:02}s"),
        (hours, mins, _) => format!("{hours}h{mins:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// At `at_s`, 10 files of 400 MiB read at 80 MiB/s.
    fn at(at_s: f64, exhausted: bool) -> Snapshot {
        let mut snapshot = Snapshot {
            at_s,
            ..Default::default()
        };
        let done = (at_s * 80.0) as u64 * MIB;
        snapshot.global.source.exhausted = exhausted;
        snapshot.global.source.progress = Some(Progress {
            files_done: done / (400 * MIB),
            files_total: Some(10),
            bytes_done: done,
            bytes_total: Some(4000 * MIB),
        });
        snapshot
    }

    #[test]
    fn a_line_every_few_seconds_and_one_at_the_end() {
        let mut log = ProgressLog::new(Some(Duration::from_secs(5)));
        let lines: Vec<(f64, String)> = (1..=50)
            .filter_map(|tick| {
                let at_s = f64::from(tick) * 0.5;
                log.take(&at(at_s, false)).map(|line| (at_s, line))
            })
            .collect();
        assert_eq!(
            lines.iter().map(|(at_s, _)| *at_s).collect::<Vec<_>>(),
            [5.5, 10.5, 15.5, 20.5],
            "five seconds after the first progress seen, then every five"
        );
        assert_eq!(
            lines[0].1,
            "progress: 1/10 files, 440.0 MiB of 3.9 GiB (11%), 80.0 MiB/s, 45s left"
        );
        assert_eq!(
            log.take(&at(50.0, true)).as_deref(),
            Some("progress: 10/10 files, 3.9 GiB of 3.9 GiB (100%), read to its end")
        );
        assert_eq!(log.take(&at(50.5, true)), None, "the end is said once");
    }

    #[test]
    fn no_lines_without_progress_or_when_turned_off() {
        let mut off = ProgressLog::new(None);
        assert!((1..20).all(|t| off.take(&at(f64::from(t), false)).is_none()));
        let mut cannot_say = ProgressLog::new(Some(Duration::from_secs(1)));
        assert!((1..20).all(|t| cannot_say
            .take(&Snapshot {
                at_s: f64::from(t),
                ..Default::default()
            })
            .is_none()));
    }

    #[test]
    fn without_totals_the_line_says_what_is_known() {
        let progress = Progress {
            files_done: 3,
            files_total: None,
            bytes_done: 1536 * MIB,
            bytes_total: None,
        };
        assert_eq!(
            line(&progress, Some(85.0 * MIB as f64), false),
            "progress: 3 files, 1.5 GiB, 85.0 MiB/s"
        );
        let stalled = Progress {
            bytes_total: Some(4096 * MIB),
            ..progress
        };
        assert_eq!(
            line(&stalled, Some(0.0), false),
            "progress: 3 files, 1.5 GiB of 4.0 GiB (38%), 0 B/s, stalled"
        );
        let stream = Progress {
            files_done: 0,
            ..progress
        };
        assert_eq!(
            line(&stream, Some(2048.0), false),
            "progress: 1.5 GiB, 2.0 KiB/s"
        );
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(123.0), "2m03s");
        assert_eq!(duration(3720.0), "1h02m");
    }
}
