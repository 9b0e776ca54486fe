//! Drawing: the screen's layout and the helpers its widgets share. Each widget has its
//! own file and draws from the state alone, so the same state always gives the same
//! screen (no clock: times come from the snapshots).

mod detail;
mod distribution;
mod drain;
mod footer;
pub(crate) mod format;
mod group;
mod header;
mod help;
mod log;
mod progress;
mod serial;
mod stages;

use ratatui::layout::{Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::state::State;

/// Rows the decision log keeps before the detail pane may take any.
const LOG_MIN: u16 = 5;
/// Rows below which the detail pane is left out.
const DETAIL_MIN: u16 = 12;
/// Width below which columns shrink and secondary figures go.
pub(crate) const WIDE: u16 = 100;

/// Draws the whole screen.
pub(crate) fn render(state: &State, frame: &mut Frame) {
    let board = state.shown();
    let areas = Areas::new(frame.area(), board.stages(), board.has_source_line());
    header::render(frame, areas.header, state, board);
    stages::render(frame, areas.stages, state, board);
    if let Some(area) = areas.detail {
        detail::render(frame, area, state, board);
    }
    if let Some(area) = areas.serial {
        serial::render(frame, area, board);
    }
    log::render(frame, areas.log, state, board);
    footer::render(frame, areas.footer, state);
    if state.drain.is_some() {
        drain::render(frame, frame.area(), state);
    }
    if state.help {
        help::render(frame, frame.area());
    }
}

/// Where each part of the screen goes. Parts that do not fit are left out, in this
/// order: the detail pane, then the serial lane; the table and the log always stay.
#[derive(Debug, PartialEq)]
struct Areas {
    header: Rect,
    stages: Rect,
    detail: Option<Rect>,
    serial: Option<Rect>,
    log: Rect,
    footer: Rect,
}

impl Areas {
    /// The parts for a pipeline of `stages`; the header takes a line more for a
    /// source's `progress`.
    fn new(area: Rect, stages: usize, progress: bool) -> Self {
        let header = (4 + u16::from(progress)).min(area.height);
        let footer = u16::from(area.height > header);
        let mut rest = area.height - header - footer;
        let serial = if rest >= 12 { 3 } else { 0 };
        rest -= serial;
        let wanted = u16::try_from(stages.max(1))
            .unwrap_or(u16::MAX)
            .saturating_add(3);
        let table = wanted.min(rest.saturating_sub(LOG_MIN).max(rest.min(4)));
        let below = rest - table;
        let detail = if below >= DETAIL_MIN + LOG_MIN && area.width >= 60 {
            (below * 3 / 5).clamp(DETAIL_MIN, 20)
        } else {
            0
        };
        let log = below - detail;
        let [header, stages, detail_area, serial_area, log, footer] =
            Layout::vertical([header, table, detail, serial, log, footer]).areas(area);
        Self {
            header,
            stages,
            detail: (detail > 0).then_some(detail_area),
            serial: (serial > 0).then_some(serial_area),
            log,
            footer,
        }
    }
}

/// Green below 70 %, yellow below 90 %, red above: how full a gauge is.
pub(crate) fn level(ratio: f64) -> Color {
    if ratio < 0.7 {
        Color::Green
    } else if ratio < 0.9 {
        Color::Yellow
    } else {
        Color::Red
    }
}

/// Faint text: labels, zeros, what matters less.
pub(crate) fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// `label ━━━━━━──── value` in `width` columns, the bar coloured by how full it is;
/// the bar goes first when space is short, then the label.
pub(crate) fn meter(label: &str, ratio: Option<f64>, value: String, width: u16) -> Line<'static> {
    let width = usize::from(width);
    let label_w = label.chars().count();
    let value_w = value.chars().count();
    let bar_w = width.saturating_sub(label_w + value_w + 2);
    let mut spans = Vec::new();
    if !label.is_empty() && label_w + value_w < width {
        spans.push(Span::styled(format!("{label} "), dim()));
    }
    if let Some(ratio) = ratio.filter(|_| bar_w >= 4) {
        let ratio = ratio.clamp(0.0, 1.0);
        let filled = ((ratio * bar_w as f64).round() as usize).min(bar_w);
        spans.push(Span::styled("━".repeat(filled), level(ratio)));
        spans.push(Span::styled("─".repeat(bar_w - filled), dim()));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::raw(value));
    Line::from(spans)
}

/// The newest `width` values as a one-line sparkline, newest at the right.
pub(crate) fn spark(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().fold(0.0, f64::max);
    let mut line = " ".repeat(width - shown.len());
    line.extend(shown.iter().map(|&v| {
        if max > 0.0 {
            BARS[((v.max(0.0) / max) * 7.0).round() as usize]
        } else {
            BARS[0]
        }
    }));
    line
}

/// As many segments as fit in `width`, taken in order of importance (a segment too
/// wide is skipped, later ones may still fit), separated by bars.
pub(crate) fn fit(
    segments: impl IntoIterator<Item = Vec<Span<'static>>>,
    width: u16,
) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for segment in segments {
        let gap = if spans.is_empty() { 0 } else { 3 };
        let w: usize = segment.iter().map(Span::width).sum();
        if used + gap + w > usize::from(width) {
            continue;
        }
        if gap > 0 {
            spans.push(Span::styled(" │ ", dim()));
        }
        used += gap + w;
        spans.extend(segment);
    }
    Line::from(spans)
}

/// A `width`×`height` rectangle in the middle of `area`, no larger than it.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tall_screen_has_every_part() {
        let areas = Areas::new(Rect::new(0, 0, 120, 40), 3, false);
        assert_eq!(areas.stages.height, 6);
        assert!(areas.detail.is_some_and(|d| d.height >= DETAIL_MIN));
        assert!(areas.serial.is_some());
        assert!(areas.log.height >= LOG_MIN);
        assert_eq!(areas.footer.y, 39);
    }

    #[test]
    fn a_small_screen_drops_the_detail_then_the_serial_lane() {
        let areas = Areas::new(Rect::new(0, 0, 80, 24), 3, false);
        assert_eq!(areas.detail, None);
        assert!(areas.serial.is_some());
        assert!(areas.log.height >= LOG_MIN);
        let tiny = Areas::new(Rect::new(0, 0, 40, 12), 8, true);
        assert_eq!(tiny.serial, None);
        assert!(tiny.stages.height >= 4);
        let total = tiny.header.height + tiny.stages.height + tiny.log.height + tiny.footer.height;
        assert_eq!(total, 12);
    }

    #[test]
    fn sparkline_is_right_aligned_and_scaled() {
        assert_eq!(spark(&[1.0, 2.0, 4.0], 5), "  ▃▅█");
        assert_eq!(spark(&[0.0, 0.0], 2), "▁▁");
        assert_eq!(spark(&[5.0; 10], 3), "███");
    }

    #[test]
    fn meter_drops_the_bar_when_narrow() {
        let wide = meter("budget", Some(0.5), "1/2".into(), 20);
        assert_eq!(wide.width(), 20);
        let narrow = meter("budget", Some(0.5), "1/2".into(), 12);
        assert_eq!(narrow.to_string(), "budget 1/2");
    }
}
