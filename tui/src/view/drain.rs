//! The drain overlay: after `q`, the records still in flight going down to zero.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use super::format::{count, elapsed};
use super::{centered, dim, meter};
use crate::state::State;

/// Draws the drain's progress in the middle of `area`.
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State) {
    let Some(drain) = state.drain else {
        return;
    };
    let now = state.in_flight();
    let done = if drain.from == 0 {
        1.0
    } else {
        1.0 - now.min(drain.from) as f64 / drain.from as f64
    };
    let waited = state
        .board
        .latest
        .as_ref()
        .map_or(0.0, |s| s.at_s - drain.since_s);
    let popup = centered(area, 60, 4);
    let block = Block::bordered().title(if state.finished {
        " drained "
    } else {
        " draining: no new records, finishing those in flight "
    });
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let [gauge, note] = Layout::vertical([Constraint::Length(1); 2]).areas(inner);
    frame.render_widget(
        Paragraph::new(meter(
            "",
            Some(done),
            format!("{} in flight of {}", count(now), count(drain.from)),
            gauge.width,
        )),
        gauge,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::styled(
            format!("{} since q · q again quits at once", elapsed(waited)),
            dim(),
        )])),
        note,
    );
}
