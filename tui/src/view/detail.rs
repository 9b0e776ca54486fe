//! The selected stage up close: its counts, workers that could not open their resource
//! (how many, the last error), history charts of throughput, workers and busy time, and
//! histograms of service time, input wait and record size.

use brigade_controller::{Snapshot, StageRole, StageStats};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::distribution::{self, Unit};
use super::format::{axis, bytes, count, elapsed, micros, rate, truncate};
use super::{dim, fit};
use crate::state::{Board, History, State};

/// Width below which the charts go and the histograms take the pane.
const CHARTS_MIN_WIDTH: u16 = 80;
/// Width the charts need to show busy time as a third chart.
const THREE_CHARTS_WIDTH: u16 = 90;

/// Draws the selected stage's detail into `area`.
pub(crate) fn render(frame: &mut Frame, area: Rect, state: &State, board: &Board) {
    let Some((snapshot, stage)) = board
        .latest
        .as_ref()
        .and_then(|s| Some((s, s.stages.get(state.selected)?)))
    else {
        frame.render_widget(Block::bordered().title(" stage "), area);
        return;
    };
    let index = state.selected;
    let role = match stage.role {
        StageRole::Transform => "transform",
        StageRole::Sink => "sink",
        StageRole::BatchSink => "batching sink",
    };
    let block = Block::bordered().title(Line::from(vec![
        Span::raw(" "),
        Span::styled(
            stage.name.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · {role} · stage {} of {} ",
            index + 1,
            snapshot.stages.len()
        )),
    ]));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let open = board
        .history
        .stages
        .get(index)
        .filter(|history| history.open_failures > 0);
    let [info, failures, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(open.is_some())),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(facts(snapshot, index, stage, info.width)),
        info,
    );
    if let Some(open) = open {
        frame.render_widget(
            Paragraph::new(open_failures(
                open.open_failures,
                open.open_error.as_deref(),
                stage.open_failures > 0,
                failures.width,
            )),
            failures,
        );
    }

    let histograms = if body.width >= CHARTS_MIN_WIDTH {
        let [charts, histograms] =
            Layout::horizontal([Constraint::Percentage(52), Constraint::Percentage(48)])
                .spacing(2)
                .areas(body);
        self::charts(frame, charts, &board.history, index);
        histograms
    } else {
        body
    };
    let rows = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(histograms);
    distribution::render(
        frame,
        rows[0],
        "service time",
        &stage.service_time_us,
        Unit::Micros,
    );
    distribution::render(
        frame,
        rows[1],
        "input wait",
        &stage.wait_in_us,
        Unit::Micros,
    );
    distribution::render(
        frame,
        rows[2],
        "record size",
        &stage.record_size_bytes,
        Unit::Bytes,
    );
}

/// The stage's counts for the window and its limits, as many as fit.
fn facts(snapshot: &Snapshot, index: usize, stage: &StageStats, width: u16) -> Line<'static> {
    let item =
        |name: &str, value: String| vec![Span::styled(format!("{name} "), dim()), Span::raw(value)];
    let workers = &stage.workers;
    let knobs = snapshot.knobs.stages.get(index);
    let mut items = vec![
        item(
            "in",
            format!("{} rec {}", count(stage.records_in), bytes(stage.bytes_in)),
        ),
        item(
            "out",
            format!(
                "{} rec {}",
                count(stage.records_out),
                bytes(stage.bytes_out)
            ),
        ),
        item(
            "per worker",
            stage
                .true_rate_per_worker()
                .map_or_else(|| "-".into(), rate),
        ),
        item(
            "workers",
            format!(
                "{}/{} in {}..{}{}",
                workers.live,
                workers.target,
                workers.min,
                workers.max,
                if workers.pinned { " pinned" } else { "" }
            ),
        ),
        item(
            "queue peak",
            format!("{}/{}", stage.queue.max_depth, stage.queue.capacity),
        ),
        item("retries", stage.retries.to_string()),
        item("dead-lettered", stage.dead_lettered.to_string()),
    ];
    // A call running past the window's 99th percentile is news (a hung call holds
    // its worker and serves nothing): it goes before the queue.
    let longest_us = stage.running_calls_s.first().map(|&s| (s * 1e6) as u64);
    if let Some(longest_us) = longest_us.filter(|&us| us > stage.service_time_us.p99) {
        let past = stage
            .running_calls_s
            .iter()
            .filter(|&&s| s * 1e6 > stage.service_time_us.p99 as f64)
            .count();
        items.insert(
            4,
            item(
                "longest call",
                format!("{} ({past} past p99)", micros(longest_us)),
            ),
        );
    }
    if let Some(knobs) = knobs {
        if stage.role == StageRole::BatchSink {
            items.push(item("batch", format!("≤{}", knobs.batch_size)));
        }
        if let Some(limit) = knobs.concurrency_limit {
            items.push(item("concurrency", format!("≤{limit}")));
        }
        if let Some(limit) = knobs.rate_limit {
            items.push(item("rate limit", rate(limit)));
        }
    }
    fit(items, width)
}

/// How many of the stage's workers could not open their resource since the dashboard
/// started, and the last error, cut to `width`; red while it still happens.
fn open_failures(failures: u64, error: Option<&str>, now: bool, width: u16) -> Line<'static> {
    let style = if now {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Yellow)
    };
    let workers = if failures == 1 { "worker" } else { "workers" };
    let text = match error {
        Some(error) => format!("✗ {failures} {workers} could not open: {error}"),
        None => format!("✗ {failures} {workers} could not open"),
    };
    Line::styled(truncate(&text, usize::from(width)), style)
}

/// Throughput, workers and (if wide enough) busy time over the kept ticks.
fn charts(frame: &mut Frame, area: Rect, history: &History, index: usize) {
    let Some(stage) = history
        .stages
        .get(index)
        .filter(|_| history.at_s.len() >= 2)
    else {
        frame.render_widget(
            Paragraph::new(Span::styled("collecting history…", dim())),
            area,
        );
        return;
    };
    let times: Vec<f64> = history.at_s.iter().copied().collect();
    let (first, last) = (times[0], times[times.len() - 1]);
    let span = [first, last.max(first + 1.0)];
    let three = area.width >= THREE_CHARTS_WIDTH;
    let areas = Layout::horizontal(if three {
        vec![Constraint::Ratio(1, 3); 3]
    } else {
        vec![Constraint::Ratio(1, 2); 2]
    })
    .spacing(1)
    .split(area);

    let rates = history.points(&stage.rate);
    let top = rates.iter().map(|p| p.1).fold(0.0, f64::max);
    chart(
        frame,
        areas[0],
        Line::styled("records/s", dim()),
        vec![(&rates, Color::Cyan)],
        span,
        nice_top(top),
    );

    let live = history.points(&stage.live);
    let target = history.points(&stage.target);
    let most = live.iter().chain(&target).map(|p| p.1).fold(1.0, f64::max);
    chart(
        frame,
        areas[1],
        Line::from(vec![
            Span::styled("workers ", dim()),
            Span::styled("live", Style::new().fg(Color::Green)),
            Span::styled(" / ", dim()),
            Span::styled("target", Style::new().fg(Color::Yellow)),
        ]),
        vec![(&live, Color::Green), (&target, Color::Yellow)],
        span,
        most + 1.0,
    );

    if three {
        let busy: Vec<(f64, f64)> = history
            .points(&stage.busy)
            .into_iter()
            .map(|(t, b)| (t, b * 100.0))
            .collect();
        chart(
            frame,
            areas[2],
            Line::styled("busy %", dim()),
            vec![(&busy, Color::Magenta)],
            span,
            100.0,
        );
    }
}

/// One line chart against time, from 0 to `top`, one colour a series.
fn chart(
    frame: &mut Frame,
    area: Rect,
    title: Line<'static>,
    series: Vec<(&Vec<(f64, f64)>, Color)>,
    span: [f64; 2],
    top: f64,
) {
    let datasets = series
        .into_iter()
        .map(|(points, color)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(color))
                .data(points)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::new().title(title.centered()))
        .x_axis(
            Axis::default()
                .bounds(span)
                .labels([elapsed(span[0]), elapsed(span[1])])
                .style(dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_string(), axis(top)])
                .style(dim()),
        );
    frame.render_widget(chart, area);
}

/// A round number a little above `value`, for a chart's top: 1, 1.2, 1.5, 2, 2.5, 3,
/// 4, 5, 6 or 8 × 10ⁿ.
fn nice_top(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|&top| top >= value * 1.05)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_tops_are_round() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(830.0), 1000.0);
        assert_eq!(nice_top(1234.0), 1500.0);
        assert_eq!(nice_top(2640.0), 3000.0);
        assert_eq!(nice_top(100.0), 120.0);
    }
}
