//! The help overlay: the key map and what the table's columns mean.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::{centered, dim};
use crate::input::KEYS;

/// What the table's less obvious columns mean.
const LEGEND: &[(&str, &str)] = &[
    ("busy", "share of the workers' time inside the stage"),
    ("wait", "waiting for input: upstream is slower"),
    ("block", "blocked on output or budget: downstream is slower"),
    ("pin", "the operator holds the count (* when narrow)"),
    ("✗n", "n workers could not open (red: this window)"),
];

/// Draws the overlay in the middle of `area`.
pub(crate) fn render(frame: &mut Frame, area: Rect) {
    let key = |(k, what): &(&str, &str)| {
        Line::from(vec![
            Span::styled(
                format!(" {k:<10} "),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(what.to_string()),
        ])
    };
    let mut lines: Vec<Line> = KEYS.iter().map(key).collect();
    lines.push(Line::from(""));
    lines.extend(LEGEND.iter().map(|(k, what)| {
        Line::from(vec![
            Span::styled(format!(" {k:<10} "), dim()),
            Span::styled(what.to_string(), dim()),
        ])
    }));
    let popup = centered(area, 64, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys · Esc closes ")),
        popup,
    );
}
