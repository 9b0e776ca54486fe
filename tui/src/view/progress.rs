//! The header's progress line for a finite source: how much is read (a bar and the
//! share when the total is known), files done of the total, bytes done of the total,
//! the read rate and the time left.

use brigade_controller::Progress;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{bytes, count, percent, seconds};
use super::{dim, fit};

/// Draws the line into `area`: a bar in its first third, the figures that fit after.
/// `bytes_per_s` is the read rate, if known; `exhausted` says the source has no more.
pub(crate) fn render(
    frame: &mut Frame,
    area: Rect,
    progress: &Progress,
    bytes_per_s: Option<f64>,
    exhausted: bool,
) {
    let [bar, figures] = Layout::horizontal([Constraint::Ratio(1, 3), Constraint::Ratio(2, 3)])
        .spacing(2)
        .areas(area);
    let share = if exhausted {
        Some(progress.fraction().unwrap_or(1.0))
    } else {
        progress.fraction()
    };
    let value = match progress.fraction() {
        Some(fraction) => percent(fraction),
        None => bytes(progress.bytes_done),
    };
    frame.render_widget(Paragraph::new(gauge(share, value, bar.width)), bar);
    frame.render_widget(
        Paragraph::new(figures_line(
            progress,
            bytes_per_s,
            exhausted,
            figures.width,
        )),
        figures,
    );
}

/// `read ━━━━━━──── value` in `width` columns, in one colour however full: read
/// to the end is good news, not an alarm. The bar goes when space is short.
fn gauge(share: Option<f64>, value: String, width: u16) -> Line<'static> {
    const LABEL: &str = "read ";
    let used = LABEL.chars().count() + value.chars().count() + 1;
    let bar_w = usize::from(width).saturating_sub(used);
    let mut spans = vec![Span::styled(LABEL, dim())];
    if let Some(share) = share.filter(|_| bar_w >= 4) {
        let filled = ((share.clamp(0.0, 1.0) * bar_w as f64).round() as usize).min(bar_w);
        spans.push(Span::styled(
            "━".repeat(filled),
            Style::new().fg(Color::Cyan),
        ));
        spans.push(Span::styled("─".repeat(bar_w - filled), dim()));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(value));
    Line::from(spans)
}

/// Files, bytes, rate and time left, as many as fit in `width`.
fn figures_line(
    progress: &Progress,
    bytes_per_s: Option<f64>,
    exhausted: bool,
    width: u16,
) -> Line<'static> {
    let item =
        |name: &str, value: String| vec![Span::styled(format!("{name} "), dim()), Span::raw(value)];
    // A source without files (a stream) says none done of no total: nothing to show.
    let files = match progress.files_total {
        Some(total) => Some(format!("{}/{}", count(progress.files_done), count(total))),
        None => (progress.files_done > 0).then(|| count(progress.files_done)),
    };
    let mut segments: Vec<_> = files
        .map(|files| item("files", files))
        .into_iter()
        .collect();
    if let Some(total) = progress.bytes_total {
        segments.push(item(
            "bytes",
            format!("{} of {}", bytes(progress.bytes_done), bytes(total)),
        ));
    }
    if exhausted {
        segments.push(vec![Span::styled(
            "source read to its end",
            Style::new().fg(Color::Blue).add_modifier(Modifier::BOLD),
        )]);
        return fit(segments, width);
    }
    if let Some(rate) = bytes_per_s {
        segments.push(item("rate", format!("{}/s", bytes(rate.max(0.0) as u64))));
        if let Some(left) = progress.eta_s(rate) {
            segments.push(vec![
                Span::styled(seconds(left), Style::new().add_modifier(Modifier::BOLD)),
                Span::styled(" left", dim()),
            ]);
        }
    }
    fit(segments, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn progress(files_total: Option<u64>, bytes_total: Option<u64>) -> Progress {
        Progress {
            files_done: 3,
            files_total,
            bytes_done: 12 * GIB / 10,
            bytes_total,
        }
    }

    #[test]
    fn the_gauge_fills_with_the_share_read() {
        assert_eq!(
            gauge(Some(0.5), "50%".into(), 17).to_string(),
            "read ━━━━──── 50%"
        );
        assert_eq!(gauge(Some(0.5), "50%".into(), 10).to_string(), "read 50%");
        assert_eq!(
            gauge(None, "1.2 GiB".into(), 30).to_string(),
            "read 1.2 GiB"
        );
    }

    #[test]
    fn with_totals_it_says_how_much_and_how_long() {
        let line = figures_line(
            &progress(Some(10), Some(4 * GIB)),
            Some(85.0 * (1 << 20) as f64),
            false,
            100,
        );
        assert_eq!(
            line.to_string(),
            "files 3/10 │ bytes 1.2 GiB of 4.0 GiB │ rate 85.0 MiB/s │ 34s left"
        );
    }

    #[test]
    fn without_totals_it_says_what_is_known() {
        let line = figures_line(&progress(None, None), Some(1e6), false, 100);
        assert_eq!(line.to_string(), "files 3 │ rate 977 KiB/s");
        let before_a_rate = figures_line(&progress(Some(10), None), None, false, 100);
        assert_eq!(before_a_rate.to_string(), "files 3/10");
        let stream = Progress {
            files_done: 0,
            ..progress(None, None)
        };
        assert_eq!(
            figures_line(&stream, Some(2048.0), false, 100).to_string(),
            "rate 2.0 KiB/s"
        );
    }

    #[test]
    fn at_the_end_it_says_the_source_is_done() {
        let done = Progress {
            files_done: 10,
            files_total: Some(10),
            bytes_done: 4 * GIB,
            bytes_total: Some(4 * GIB),
        };
        let line = figures_line(&done, Some(0.0), true, 100);
        assert_eq!(
            line.to_string(),
            "files 10/10 │ bytes 4.0 GiB of 4.0 GiB │ source read to its end"
        );
    }
}
