//! The table of stages, one row each: workers (live/target, pinned), where the workers'
//! time goes (busy, waiting for input, blocked on output), queue fill, rate and its
//! sparkline, service time, errors; a mark on a stage whose workers could not open
//! their resource. The selected row is the one the keys act on.

use brigade_controller::{Snapshot, StageRole, StageStats};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::format::{count, micros, percent, rate, truncate};
use super::{dim, level, spark, WIDE};
use crate::state::{Board, State};

/// Column widths (besides the name) and headings, for a wide or a narrow table.
struct Columns {
    widths: [u16; 10],
    headings: [&'static str; 10],
    pin: &'static str,
}

const WIDE_COLUMNS: Columns = Columns {
    widths: [9, 4, 4, 5, 11, 7, 16, 7, 7, 5],
    headings: [
        "workers", "busy", "wait", "block", "queue", "rate", "", "p50", "p99", "err",
    ],
    pin: " pin",
};

const NARROW_COLUMNS: Columns = Columns {
    widths: [6, 4, 4, 4, 9, 7, 6, 6, 6, 3],
    headings: [
        "wkrs", "busy", "wait", "blk", "queue", "rate", "", "p50", "p99", "err",
    ],
    pin: "*",
};

/// Columns between cells.
const SPACING: u16 = 1;
/// Index in [`Columns::widths`] of the queue column.
const QUEUE: usize = 4;
/// Index in [`Columns::widths`] of the rate sparkline, whose heading is blank.
const SPARK: usize = 6;
/// The selected row's mark.
const MARK: &str = "▸ ";

/// Draws the stage table into `area`.
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State, board: &Board) {
    let block = Block::bordered().title(" stages ");
    let Some(snapshot) = board.latest.as_ref().filter(|s| !s.stages.is_empty()) else {
        frame.render_widget(
            Paragraph::new(Span::styled("no stages yet", dim())).block(block),
            area,
        );
        return;
    };
    let columns = if area.width >= WIDE {
        &WIDE_COLUMNS
    } else {
        &NARROW_COLUMNS
    };
    let fixed: u16 = columns.widths.iter().sum::<u16>()
        + SPACING * columns.widths.len() as u16
        + MARK.chars().count() as u16
        + 2;
    let name_width = area.width.saturating_sub(fixed).max(4);
    let widths: Vec<Constraint> = std::iter::once(name_width)
        .chain(columns.widths)
        .map(Constraint::Length)
        .collect();
    let heading = Row::new(
        std::iter::once("stage")
            .chain(columns.headings)
            .enumerate()
            .map(|(i, text)| {
                let line = Line::from(text);
                Cell::from(if i == 0 || i == SPARK + 1 {
                    line
                } else {
                    line.right_aligned()
                })
            }),
    )
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = snapshot.stages.iter().enumerate().map(|(i, stage)| {
        let history = board.history.stages.get(i);
        let rates = history.map(|h| h.rate.last(usize::from(columns.widths[SPARK])));
        row(
            snapshot,
            i,
            stage,
            columns,
            name_width,
            rates.as_deref().unwrap_or(&[]),
            history.map_or(stage.open_failures, |h| h.open_failures),
        )
    });
    let table = Table::new(rows, widths)
        .header(heading)
        .column_spacing(SPACING)
        .block(block)
        .highlight_symbol(MARK)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(Style::new().bg(Color::DarkGray));
    let mut table_state = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, area, &mut table_state);
}

fn row<'a>(
    snapshot: &Snapshot,
    index: usize,
    stage: &'a StageStats,
    columns: &Columns,
    name_width: u16,
    rates: &[f64],
    open_failures: u64,
) -> Row<'a> {
    let right = |text: String, style: Style| Cell::from(Line::styled(text, style).right_aligned());
    let workers = &stage.workers;
    let workers_cell = right(
        format!(
            "{}/{}{}",
            workers.live,
            workers.target,
            if workers.pinned { columns.pin } else { "" }
        ),
        if workers.pinned {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else if workers.live != workers.target {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        },
    );
    let busy = stage.utilisation();
    let waiting = stage.waiting_share();
    let blocked = stage.blocked_share();
    let share_style = |share: f64, warn: f64, alarm: f64| {
        if share >= alarm {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else if share >= warn {
            Style::new().fg(Color::Yellow)
        } else if share < 0.005 {
            dim()
        } else {
            Style::new()
        }
    };
    let queue = &stage.queue;
    let fill = if queue.capacity > 0 {
        queue.mean_depth / queue.capacity as f64
    } else {
        0.0
    };
    let depth = format!("{:.0}/{}", queue.mean_depth, queue.capacity);
    let queue_cell = if columns.widths[QUEUE] >= 11 {
        Cell::from(Line::from(vec![
            Span::styled(format!("{depth:>7} "), Style::new().fg(level(fill))),
            Span::styled(fill_bar(fill, 3), Style::new().fg(level(fill))),
        ]))
    } else {
        right(depth, Style::new().fg(level(fill)))
    };
    let service = &stage.service_time_us;
    let time = |us: u64| {
        if service.count == 0 {
            right("-".into(), dim())
        } else {
            right(micros(us), Style::new())
        }
    };
    Row::new([
        name_cell(snapshot, index, stage, name_width, open_failures),
        workers_cell,
        right(percent(busy), share_style(busy, 0.7, 0.9)),
        right(
            percent(waiting),
            share_style(waiting, f64::INFINITY, f64::INFINITY),
        ),
        right(percent(blocked), share_style(blocked, 0.2, 0.5)),
        queue_cell,
        right(rate(stage.observed_rate(snapshot.window_s)), Style::new()),
        Cell::from(Span::styled(
            spark(rates, usize::from(columns.widths[SPARK])),
            Style::new().fg(Color::Cyan),
        )),
        time(service.p50),
        time(service.p99),
        right(
            stage.errors.to_string(),
            if stage.errors > 0 {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                dim()
            },
        ),
    ])
}

/// The stage's name, what kind of sink it is, and `✗n` when `open_failures` of its
/// workers could not open their resource (red while it still happens), cut to `width`.
fn name_cell<'a>(
    snapshot: &Snapshot,
    index: usize,
    stage: &StageStats,
    width: u16,
    open_failures: u64,
) -> Cell<'a> {
    let width = usize::from(width);
    let marker = if open_failures > 0 {
        format!(" ✗{}", count(open_failures))
    } else {
        String::new()
    };
    let marker_style = if stage.open_failures > 0 {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Yellow)
    };
    let role = match stage.role {
        StageRole::Transform => String::new(),
        StageRole::Sink => " sink".into(),
        StageRole::BatchSink => match snapshot.knobs.stages.get(index) {
            Some(knobs) => format!(" batch≤{}", knobs.batch_size),
            None => " batch".into(),
        },
    };
    let shortest_name = stage.name.chars().count().min(4);
    let mut tail = vec![(marker, marker_style), (role, dim())];
    // What does not fit goes: the role first, then the marker.
    while tail
        .iter()
        .map(|(text, _)| text.chars().count())
        .sum::<usize>()
        + shortest_name
        > width
    {
        tail.pop();
    }
    let room = width.saturating_sub(tail.iter().map(|(text, _)| text.chars().count()).sum());
    let mut spans = vec![Span::raw(truncate(&stage.name, room))];
    spans.extend(
        tail.into_iter()
            .filter(|(text, _)| !text.is_empty())
            .map(|(text, style)| Span::styled(text, style)),
    );
    Cell::from(Line::from(spans))
}

/// A bar `width` cells long, filled to `ratio` in eighths of a cell.
fn fill_bar(ratio: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (ratio.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    if eighths / 8 < width {
        bar.push(PARTS[eighths % 8]);
        bar.push_str(&" ".repeat(width - eighths / 8 - 1));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bar_counts_eighths() {
        assert_eq!(fill_bar(0.0, 3), "   ");
        assert_eq!(fill_bar(0.5, 3), "█▌ ");
        assert_eq!(fill_bar(1.0, 3), "███");
    }
}
