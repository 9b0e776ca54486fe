//! The serial lane: records above the size threshold, one at a time. Its threshold,
//! the record in it now, the one waiting for the budget, and what it did this window.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::format::{bytes, count, seconds};
use super::{dim, fit};
use crate::state::Board;

/// Draws the serial lane into `area` (3 rows: a border, a line, a border).
pub(crate) fn render(frame: &mut Frame, area: Rect, board: &Board) {
    let block = Block::bordered().title(" serial lane ");
    let Some(snapshot) = board.latest.as_ref() else {
        frame.render_widget(block, area);
        return;
    };
    let serial = &snapshot.global.serial;
    let item = |name: &str, value: String, style: Style| {
        vec![
            Span::styled(format!("{name} "), dim()),
            Span::styled(value, style),
        ]
    };
    let items = match serial.threshold_bytes {
        None => vec![vec![Span::styled(
            "off: every record goes through the stages in parallel",
            dim(),
        )]],
        Some(threshold) => vec![
            item("threshold", format!("≥{}", bytes(threshold)), Style::new()),
            if serial.current_bytes > 0 {
                item(
                    "in the lane",
                    bytes(serial.current_bytes),
                    Style::new().fg(Color::Cyan),
                )
            } else {
                item("in the lane", "idle".into(), dim())
            },
            if serial.waiting_bytes > 0 {
                item(
                    "waiting for budget",
                    bytes(serial.waiting_bytes),
                    Style::new().fg(Color::Yellow),
                )
            } else {
                item("waiting", "none".into(), dim())
            },
            item(
                "this window",
                format!("{} rec {}", count(serial.records), bytes(serial.bytes)),
                Style::new(),
            ),
            item("busy", seconds(serial.busy_s), Style::new()),
        ],
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(fit(items, inner.width)), inner);
}
