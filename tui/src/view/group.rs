//! The header's line for a source in a consumer group: the backlog the fleet shares
//! (lag, pending entries here and elsewhere), the consumers alive, the entries claimed
//! from dead ones, and how many processes would keep up with the arrivals and drain
//! the lag in ten minutes.

use brigade_controller::fleet::{recommend, DRAIN_WITHIN_S};
use brigade_controller::GroupStats;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::format::{count, rate};
use super::{dim, fit};

/// Draws the line into `area`; `per_process_per_s` is what this process can finish
/// per second, if known.
pub(crate) fn render(
    frame: &mut Frame,
    area: Rect,
    group: &GroupStats,
    per_process_per_s: Option<f64>,
) {
    frame.render_widget(
        Paragraph::new(line(group, per_process_per_s, area.width)),
        area,
    );
}

/// The group's figures, as many as fit in `width`.
fn line(group: &GroupStats, per_process_per_s: Option<f64>, width: u16) -> Line<'static> {
    let item =
        |name: &str, value: String| vec![Span::styled(format!("{name} "), dim()), Span::raw(value)];
    let mut segments = vec![item("group lag", group.lag.map_or("?".into(), count))];
    segments.push(item(
        "pending",
        format!(
            "{} here, {} elsewhere",
            count(group.pending_own),
            count(group.pending_others)
        ),
    ));
    segments.push(item("consumers", count(group.consumers)));
    if let Some(arrival) = group.arrival_per_s {
        segments.push(item("arriving", rate(arrival)));
    }
    let advice = per_process_per_s.and_then(|per_s| recommend(group, per_s, DRAIN_WITHIN_S));
    if let Some(advice) = advice {
        let short = advice.drain > group.consumers.max(1);
        let style = if short {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        segments.push(vec![
            Span::styled("processes ", dim()),
            Span::styled(
                format!("{} keep up · {} drain in 10m", advice.keep_up, advice.drain),
                style,
            ),
        ]);
    }
    segments.push(item("claimed", count(group.claims)));
    fit(segments, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line<'_>) -> String {
        line.spans
            .iter()
            .map(|span| span.content.as_ref())
            .collect()
    }

    #[test]
    fn the_line_shows_the_backlog_the_consumers_and_the_processes_it_calls_for() {
        let group = GroupStats {
            lag: Some(600_000),
            pending_own: 120,
            pending_others: 40,
            consumers: 2,
            claims: 7,
            arrival_per_s: Some(2_500.0),
        };
        let shown = text(&line(&group, Some(1_000.0), 200));
        assert!(shown.contains("group lag 600k"), "{shown}");
        assert!(shown.contains("pending 120 here, 40 elsewhere"), "{shown}");
        assert!(shown.contains("consumers 2"), "{shown}");
        assert!(
            shown.contains("processes 3 keep up · 4 drain in 10m"),
            "{shown}"
        );
        assert!(shown.contains("claimed 7"), "{shown}");
    }

    #[test]
    fn without_a_capacity_or_an_arrival_rate_there_is_no_recommendation() {
        let group = GroupStats {
            lag: None,
            consumers: 1,
            ..GroupStats::default()
        };
        let shown = text(&line(&group, Some(1_000.0), 200));
        assert!(shown.contains("group lag ?"), "{shown}");
        assert!(!shown.contains("processes"), "{shown}");
    }
}
