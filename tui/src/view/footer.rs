//! The footer: what the last command did, and the main keys.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::dim;
use crate::state::State;

/// The main keys, most needed first.
const HINTS: &[&str] = &[
    "? help",
    "q quit",
    "↑↓ select",
    "+/- pin",
    "u unpin",
    "a pause",
    "[ ] budget",
    "f freeze",
];

/// Draws the footer line into `area`: the status at the left, as many key hints as fit
/// at the right.
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State) {
    let status = state.status.clone().or_else(|| {
        state
            .finished
            .then(|| "the pipeline has finished: q quits".to_string())
    });
    let status_width = status.as_ref().map_or(0, |s| s.chars().count() + 1);
    let room = usize::from(area.width).saturating_sub(status_width + 2);
    let mut hints = String::new();
    for hint in HINTS {
        let needed = hint.chars().count() + if hints.is_empty() { 0 } else { 2 };
        if hints.chars().count() + needed > room {
            break;
        }
        if !hints.is_empty() {
            hints.push_str("  ");
        }
        hints.push_str(hint);
    }
    let gap = usize::from(area.width).saturating_sub(status_width + hints.chars().count());
    let line = Line::from(vec![
        Span::styled(
            status.map_or_else(String::new, |s| format!(" {s}")),
            Style::new().fg(Color::Yellow),
        ),
        Span::raw(" ".repeat(gap)),
        Span::styled(hints, dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}
