//! The header: the pipeline as a whole. Throughput, bytes in flight against the budget,
//! RSS, CPU against the cores, the controller's state, the source's idle gap against
//! its timeout, the time since the start and, for a finite source, how far it has read;
//! for a source in a consumer group, the group and the processes its backlog calls for.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::format::{bytes, bytes_of, count, elapsed, rate, seconds, speed};
use super::{dim, fit, group, meter, progress, spark, WIDE};
use crate::state::{Board, State};

/// Draws the header into `area` (4 rows: a border, two lines, a border; 5 with a
/// third line for a source's progress or its consumer group).
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State, board: &Board) {
    let block = Block::bordered()
        .title(Line::from(vec![
            Span::styled(" brigade ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(if state.title.is_empty() {
                String::new()
            } else {
                format!("· {} ", state.title)
            }),
        ]))
        .title(Line::from(tags(state)).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut rows = inner.rows();
    let (first, second, third) = (
        rows.next().unwrap_or_default(),
        rows.next().unwrap_or_default(),
        rows.next(),
    );
    let Some(snapshot) = board.latest.as_ref() else {
        frame.render_widget(
            Paragraph::new(Span::styled("waiting for the first tick…", dim())),
            first,
        );
        return;
    };
    let global = &snapshot.global;
    let wide = first.width >= WIDE;
    let throughput = board.history.throughput.last(if wide { 8 } else { 4 });
    let up = if wide {
        format!("{} · tick {}", elapsed(snapshot.at_s), snapshot.tick)
    } else {
        elapsed(snapshot.at_s)
    };
    let mut segments = vec![
        controller(state, snapshot.paused, wide),
        vec![
            Span::styled("throughput ", dim()),
            Span::styled(
                rate(throughput.last().copied().unwrap_or(0.0)),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(" "),
            Span::styled(
                spark(&throughput, throughput.len()),
                Style::new().fg(Color::Cyan),
            ),
        ],
        vec![
            Span::styled("source ", dim()),
            Span::raw(rate(global.source.rate)),
        ],
        vec![
            Span::styled("RSS ", dim()),
            Span::raw(bytes(global.rss_bytes)),
        ],
        vec![Span::styled("up ", dim()), Span::raw(up)],
        vec![
            Span::styled("in flight ", dim()),
            Span::raw(format!("{} rec", count(global.totals.in_flight))),
        ],
    ];
    let spill = &global.source.spill;
    if let Some(capacity) = spill.capacity_bytes {
        // The spill: what waits on disk of what it may hold, and what went through.
        segments.push(vec![
            Span::styled("spill ", dim()),
            Span::raw(format!(
                "{} ({} rec), {} through",
                bytes_of(spill.bytes, capacity),
                count(spill.records),
                bytes(spill.total_bytes)
            )),
        ]);
    }
    frame.render_widget(Paragraph::new(fit(segments, first.width)), first);

    let meters = Layout::horizontal([Constraint::Ratio(1, 3); 3])
        .spacing(2)
        .split(second);
    let in_flight = global.inflight_bytes_mean.max(0.0) as u64;
    let budget = match global.memory_budget {
        Some(budget) => meter(
            "budget",
            Some(in_flight as f64 / budget.max(1) as f64),
            bytes_of(in_flight, budget),
            meters[0].width,
        ),
        None => meter(
            "budget",
            None,
            format!("{} in flight, no cap", bytes(in_flight)),
            meters[0].width,
        ),
    };
    let cpu = meter(
        "CPU",
        (global.cores > 0).then(|| global.cpu_percent / (global.cores as f64 * 100.0)),
        format!("{:.0}%/{} cores", global.cpu_percent, global.cores),
        meters[1].width,
    );
    let source = &global.source;
    let idle = match source.idle_timeout_s {
        Some(timeout) => meter(
            "source idle",
            Some(source.longest_idle_s / timeout.max(f64::MIN_POSITIVE)),
            format!("{}/{}", seconds(source.longest_idle_s), seconds(timeout)),
            meters[2].width,
        ),
        None => meter(
            "source idle",
            None,
            format!("{}, no timeout", seconds(source.longest_idle_s)),
            meters[2].width,
        ),
    };
    for (line, area) in [budget, cpu, idle].into_iter().zip(meters.iter()) {
        frame.render_widget(Paragraph::new(line), *area);
    }
    match (&source.progress, &source.group, third) {
        (Some(progress), _, Some(third)) => progress::render(
            frame,
            third,
            progress,
            board.read_rate.bytes_per_s(),
            source.exhausted,
        ),
        (None, Some(group), Some(third)) => {
            group::render(frame, third, group, board.capacity.per_s());
        }
        _ => {}
    }
}

/// What the dashboard is looking at: live or replay (speed, paused), frozen.
fn tags(state: &State) -> Vec<Span<'static>> {
    let mut tags = Vec::new();
    match state.replay {
        Some(replay) if replay.paused => tags.push(Span::styled(
            format!(" replay {}× ‖ paused ", speed(replay.speed)),
            Style::new().fg(Color::Yellow),
        )),
        Some(replay) => tags.push(Span::raw(format!(" replay {}× ▶ ", speed(replay.speed)))),
        None => tags.push(Span::raw(" live ")),
    }
    if state.frozen.is_some() {
        tags.push(Span::styled(
            " FROZEN ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    tags
}

/// The controller's state, or the pipeline's once it drains or ends.
fn controller(state: &State, paused: bool, wide: bool) -> Vec<Span<'static>> {
    let paused = state.pending.paused.unwrap_or(paused);
    let (text, color) = if state.finished {
        ("■ finished", Color::Blue)
    } else if state.drain.is_some() {
        ("◌ draining", Color::Magenta)
    } else if paused {
        (
            if wide {
                "‖ controller paused"
            } else {
                "‖ paused"
            },
            Color::Yellow,
        )
    } else {
        (
            if wide {
                "● controller running"
            } else {
                "● running"
            },
            Color::Green,
        )
    };
    vec![Span::styled(
        text,
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )]
}
