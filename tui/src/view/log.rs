//! The decision log: every knob the controller or the operator moved, newest first,
//! with who moved it, what became of it, and why. Entries about the selected stage are
//! marked.

use brigade_controller::{Action, DecisionRecord, Outcome, Snapshot};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Row, Table};
use ratatui::Frame;

use super::format::{bytes, elapsed, rate, wrap};
use super::{dim, WIDE};
use crate::state::{Board, State};

/// Draws the log into `area`, scrolled by the operator's offset.
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State, board: &Board) {
    let total = board.log.len();
    let offset = state.log_offset.min(total.saturating_sub(1));
    let mut block = Block::bordered().title(" decisions, newest first ");
    if total > 0 {
        let scrolled = if offset > 0 {
            format!(" {offset} newer above · PgUp ")
        } else {
            String::new()
        };
        block =
            block.title(Line::styled(format!("{scrolled} {total} in all "), dim()).right_aligned());
    }
    let wide = area.width >= WIDE;
    let widths: &[u16] = if wide {
        &[1, 5, 8, 9, 26, 10]
    } else {
        &[1, 5, 8, 20, 9]
    };
    let fixed: u16 = widths.iter().sum::<u16>() + SPACING * widths.len() as u16 + 2;
    let reason_width = area.width.saturating_sub(fixed).max(10);
    let constraints: Vec<Constraint> = widths
        .iter()
        .chain([&reason_width])
        .map(|&w| Constraint::Length(w))
        .collect();
    let headings: &[&str] = if wide {
        &["", "tick", "at", "by", "change", "outcome", "reason"]
    } else {
        &["", "tick", "by", "change", "outcome", "reason"]
    };
    let heading = Row::new(headings.iter().map(|&h| Cell::from(h)))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let visible = usize::from(area.height.saturating_sub(3));
    // Rows to spare go to the reasons: up to three lines each.
    let shown = total.saturating_sub(offset).min(visible).max(1);
    let lines = (visible / shown).clamp(1, 3);
    let room = Reason {
        width: usize::from(reason_width),
        lines,
    };
    let rows = board
        .log
        .iter()
        .rev()
        .skip(offset)
        .take(visible / lines)
        .map(|record| row(record, board.latest.as_ref(), state.selected, wide, room));
    if total == 0 {
        let empty = Row::new([
            Cell::from(""),
            Cell::from(Span::styled("no decisions yet", dim())),
        ]);
        let table = Table::new([empty], [Constraint::Length(1), Constraint::Min(0)]).block(block);
        frame.render_widget(table, area);
        return;
    }
    let table = Table::new(rows, constraints)
        .header(heading)
        .column_spacing(SPACING)
        .block(block);
    frame.render_widget(table, area);
}

/// Columns between cells.
const SPACING: u16 = 1;

/// Room for a decision's reason.
#[derive(Clone, Copy)]
struct Reason {
    width: usize,
    lines: usize,
}

fn row<'a>(
    record: &'a DecisionRecord,
    snapshot: Option<&Snapshot>,
    selected: usize,
    wide: bool,
    room: Reason,
) -> Row<'a> {
    let action = &record.decision.action;
    let mark = if action.stage() == Some(selected) {
        "▸"
    } else {
        ""
    };
    let by_style = if record.by == "operator" {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let (outcome, outcome_style, reason) = match &record.outcome {
        Outcome::Applied => (
            "applied".to_string(),
            Style::new().fg(Color::Green),
            record.decision.reason.clone(),
        ),
        Outcome::Clamped { value } => (
            format!("clamped {value}"),
            Style::new().fg(Color::Yellow),
            record.decision.reason.clone(),
        ),
        Outcome::Ignored { why } => (
            "ignored".to_string(),
            Style::new().fg(Color::Red),
            format!("[{why}] {}", record.decision.reason),
        ),
        other => (
            format!("{other:?}"),
            Style::new(),
            record.decision.reason.clone(),
        ),
    };
    let mut cells = vec![
        Cell::from(Span::styled(mark, Style::new().fg(Color::Cyan))),
        Cell::from(Line::from(record.tick.to_string()).right_aligned()),
    ];
    if wide {
        cells.push(Cell::from(
            Line::styled(elapsed(record.at_s), dim()).right_aligned(),
        ));
    }
    cells.extend([
        Cell::from(Span::styled(record.by.clone(), by_style)),
        Cell::from(change(action, snapshot)),
        Cell::from(Span::styled(outcome, outcome_style)),
        Cell::from(Text::from_iter(wrap(&reason, room.width, room.lines))),
    ]);
    Row::new(cells).height(room.lines as u16)
}

/// What the action sets, in words: `geocode workers → 8`.
fn change(action: &Action, snapshot: Option<&Snapshot>) -> String {
    let name = |stage: usize| {
        snapshot
            .and_then(|s| s.stages.get(stage))
            .map_or_else(|| format!("stage {}", stage + 1), |s| s.name.clone())
    };
    match *action {
        Action::SetWorkers { stage, workers } => format!("{} workers → {workers}", name(stage)),
        Action::SetQueueCapacity { stage, capacity } => {
            format!("{} queue → {capacity}", name(stage))
        }
        Action::SetBatchSize { stage, size } => format!("{} batch → {size}", name(stage)),
        Action::SetConcurrencyLimit { stage, limit } => format!(
            "{} concurrency → {}",
            name(stage),
            limit.map_or_else(|| "∞".into(), |l| l.to_string())
        ),
        Action::SetRateLimit { stage, per_second } => format!(
            "{} rate → {}",
            name(stage),
            per_second.map_or_else(|| "∞".into(), rate)
        ),
        Action::SetSerialThreshold { bytes: threshold } => format!(
            "serial lane → {}",
            threshold.map_or_else(|| "off".into(), |b| format!("≥{}", bytes(b)))
        ),
        Action::SetMemoryBudget { bytes: budget } => format!(
            "budget → {}",
            budget.map_or_else(|| "operator's".into(), bytes)
        ),
        other => format!("{other:?}"),
    }
}
