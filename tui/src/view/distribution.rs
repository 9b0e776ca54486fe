//! One histogram of the detail pane: its percentiles in a line, and its shape on a
//! log scale beneath. The shape comes from the serialized hdrhistogram when the
//! producer sent one; otherwise a ruler places the summary percentiles between the
//! smallest and the largest value.

use brigade_controller::{Histogram, HistogramData};
use ratatui::layout::{Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

use super::format::{bytes, count, micros};
use super::{dim, fit};

/// What a histogram's values measure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unit {
    /// Microseconds.
    Micros,
    /// Bytes.
    Bytes,
}

impl Unit {
    fn format(self, value: u64) -> String {
        match self {
            Unit::Micros => micros(value),
            Unit::Bytes => bytes(value),
        }
    }
}

/// Draws `data` into `area`: the summary on the first row, the shape below it and its
/// scale on the last row, as far as the rows go.
pub(crate) fn render(frame: &mut Frame, area: Rect, label: &str, data: &HistogramData, unit: Unit) {
    if area.height == 0 {
        return;
    }
    let [summary, shape, axis] = match area.height {
        1 => [area, Rect::default(), Rect::default()],
        2 => {
            let [a, b] = Layout::vertical([1, 1]).areas(area);
            [a, b, Rect::default()]
        }
        h => Layout::vertical([1, h - 2, 1]).areas(area),
    };
    let title = vec![Span::styled(
        label.to_string(),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if data.count == 0 {
        let line = fit(
            [title, vec![Span::styled("no samples", dim())]],
            summary.width,
        );
        frame.render_widget(Paragraph::new(line), summary);
        return;
    }
    let figure = |name: &str, value: u64| {
        vec![
            Span::styled(format!("{name} "), dim()),
            Span::raw(unit.format(value)),
        ]
    };
    let line = fit(
        [
            title,
            figure("p50", data.p50),
            figure("p99", data.p99),
            figure("max", data.max),
            figure("p90", data.p90),
            figure("p99.9", data.p999),
            vec![Span::styled("n ", dim()), Span::raw(count(data.count))],
        ],
        summary.width,
    );
    frame.render_widget(Paragraph::new(line), summary);
    if shape.is_empty() || shape.width < 10 {
        return;
    }
    let scale = Scale::new(data.min, data.max);
    match data.decode() {
        Ok(histogram) if !data.encoded.is_empty() && !histogram.is_empty() => {
            let bins = scale.bins(&histogram, usize::from(shape.width));
            frame.render_widget(
                Sparkline::default()
                    .data(bins)
                    .style(Style::new().fg(Color::Cyan)),
                shape,
            );
        }
        _ => ruler(frame, shape, data, &scale),
    }
    if !axis.is_empty() {
        let low = unit.format(scale.low);
        let high = unit.format(scale.high);
        let gap =
            usize::from(axis.width).saturating_sub(low.chars().count() + high.chars().count() + 2);
        let middle = if gap >= 11 {
            let side = (gap - 11) / 2;
            format!(
                "{} log scale {}",
                "─".repeat(side),
                "─".repeat(gap - 11 - side)
            )
        } else {
            "─".repeat(gap)
        };
        let line = Line::from(vec![
            Span::raw(low),
            Span::styled(format!(" {middle} "), dim()),
            Span::raw(high),
        ]);
        frame.render_widget(Paragraph::new(line), axis);
    }
}

/// A log scale between the smallest and the largest value.
struct Scale {
    low: u64,
    high: u64,
}

impl Scale {
    fn new(min: u64, max: u64) -> Self {
        let low = min.max(1);
        Self {
            low,
            high: max.max(low),
        }
    }

    /// Where `value` falls, 0..=1.
    fn position(&self, value: u64) -> f64 {
        if self.high == self.low {
            return 0.0;
        }
        let (low, high) = ((self.low as f64).ln(), (self.high as f64).ln());
        (((value.max(1) as f64).ln() - low) / (high - low)).clamp(0.0, 1.0)
    }

    /// The histogram's counts in `n` log-spaced bins from low to high.
    fn bins(&self, histogram: &Histogram<u64>, n: usize) -> Vec<u64> {
        let mut bins = vec![0; n];
        for value in histogram.iter_recorded() {
            let at = (self.position(value.value_iterated_to()) * n as f64) as usize;
            bins[at.min(n - 1)] += value.count_at_value();
        }
        bins
    }
}

/// The summary percentiles placed on the scale: `├━━━┼━━━━┼━━┼━┤`, coloured from the
/// body to the tail, with their names beneath when there is a row for them.
fn ruler(frame: &mut Frame, area: Rect, data: &HistogramData, scale: &Scale) {
    let width = usize::from(area.width);
    let at = |value: u64| (scale.position(value) * (width - 1) as f64).round() as usize;
    let marks = [
        ("50", at(data.p50), Color::Green),
        ("90", at(data.p90), Color::Cyan),
        ("99", at(data.p99), Color::Yellow),
        ("99.9", at(data.p999), Color::Red),
    ];
    let spans: Vec<Span> = (0..width)
        .map(|x| {
            let symbol = if x == 0 {
                "├"
            } else if x == width - 1 {
                "┤"
            } else if marks.iter().any(|&(_, m, _)| m == x) {
                "┼"
            } else {
                "━"
            };
            let color = marks
                .iter()
                .find(|&&(_, m, _)| x <= m)
                .map_or(Color::Red, |&(_, _, c)| c);
            Span::styled(symbol, Style::new().fg(color))
        })
        .collect();
    let [bar, names] = Layout::vertical([1, area.height.saturating_sub(1)]).areas(area);
    frame.render_widget(Paragraph::new(Line::from(spans)), bar);
    if names.is_empty() {
        return;
    }
    let mut text = vec![' '; width];
    let mut free_from = 0;
    for (name, x, _) in marks {
        let start = x.saturating_sub(name.len() / 2).max(free_from);
        if start + name.len() > width {
            break;
        }
        for (i, c) in name.chars().enumerate() {
            text[start + i] = c;
        }
        free_from = start + name.len() + 1;
    }
    let text: String = text.into_iter().collect();
    frame.render_widget(Paragraph::new(Span::styled(text, dim())), names);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_a_log_scale() {
        let mut histogram = Histogram::<u64>::new(3).unwrap();
        histogram.record_n(10, 5).unwrap();
        histogram.record_n(100, 3).unwrap();
        histogram.record(1000).unwrap();
        let scale = Scale::new(10, 1000);
        assert_eq!(scale.bins(&histogram, 3), [5, 3, 1]);
        assert!((scale.position(100) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_single_value_scale_puts_everything_first() {
        let scale = Scale::new(7, 7);
        assert_eq!(scale.position(7), 0.0);
    }
}
