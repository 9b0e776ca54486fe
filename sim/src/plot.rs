//! Runs over time, drawn as one SVG file (`brigade sim --plot FILE.svg`).
//!
//! One column per scenario, side by side in the same file, each with three panels over
//! virtual time: throughput (records/s, a 10 s moving mean), workers (the sum over all
//! stages) and the most bytes in flight per tick (MiB), with each policy's memory
//! budget dotted and the machine's memory (the crash line) when they are within twice
//! the data's scale (else the caption gives them as off the scale). Each policy has one
//! colour in every panel and every column; the oracle is a black dashed line. A legend
//! under each column names them.
//!
//! Text is left to the SVG viewer as `<text>` elements: no font is read or rasterised,
//! so drawing needs no system library.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use thiserror::Error;

use crate::RunResult;
use brigade_scenario::Scenario;

const MIB: f64 = (1u64 << 20) as f64;
const COLUMN_WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 300;
const TITLE_HEIGHT: u32 = 40;
const LEGEND_HEIGHT: u32 = 70;
const FONT: &str = "sans-serif";
/// One colour per policy, in the order the runs come (then again from the start).
const COLOURS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
const MEMORY_COLOUR: RGBColor = RGBColor(200, 0, 0);
/// The span of the throughput panel's moving mean, seconds.
const SMOOTHING_S: f64 = 10.0;

/// One scenario's runs, as [`plot`] draws them.
#[derive(Clone, Debug)]
pub struct PlotScenario<'a> {
    /// The scenario (its name titles the column, its machine's memory marks the crash
    /// line).
    pub scenario: &'a Scenario,
    /// The oracle's run, drawn dashed.
    pub oracle: &'a RunResult,
    /// One run per policy, in the order of the legend.
    pub runs: Vec<&'a RunResult>,
}

/// Why a plot could not be written.
#[derive(Debug, Error)]
pub enum PlotError {
    /// The drawing library failed.
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    /// The file could not be written.
    #[error("{}: cannot write the plot: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Draws `scenarios`, one column each, into the SVG file `path`.
pub fn plot(path: &Path, scenarios: &[PlotScenario<'_>]) -> Result<(), PlotError> {
    let svg = svg(scenarios).map_err(|e| PlotError::Draw(e.to_string()))?;
    std::fs::write(path, svg).map_err(|source| PlotError::Io {
        path: path.to_owned(),
        source,
    })
}

fn svg(scenarios: &[PlotScenario<'_>]) -> Result<String, Box<dyn StdError>> {
    let mut svg = String::new();
    let columns = scenarios.len().max(1);
    let size = (
        COLUMN_WIDTH * columns as u32,
        TITLE_HEIGHT + 3 * PANEL_HEIGHT + LEGEND_HEIGHT,
    );
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        for (area, scenario) in root.split_evenly((1, columns)).iter().zip(scenarios) {
            column(area, scenario)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// One scenario: title, three panels, legend.
fn column(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    plot: &PlotScenario<'_>,
) -> Result<(), Box<dyn StdError>> {
    let area = area.titled(&plot.scenario.name, (FONT, 28))?;
    let (panels, legend_area) = area.split_vertically(3 * PANEL_HEIGHT);
    let panels = panels.split_evenly((3, 1));
    let mut runs: Vec<(&RunResult, ShapeStyle, Dash)> = plot
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            (
                *run,
                COLOURS[i % COLOURS.len()].stroke_width(2),
                Dash::Solid,
            )
        })
        .collect();
    runs.push((plot.oracle, BLACK.stroke_width(2), Dash::Dashed));
    let end_s = runs
        .iter()
        .filter_map(|(run, ..)| run.series.last().map(|s| s.at_s))
        .fold(1.0, f64::max);
    let lines = |values: &dyn Fn(&RunResult) -> Vec<(f64, f64)>| -> Vec<Line> {
        runs.iter()
            .map(|(run, style, dash)| Line {
                points: values(run),
                style: *style,
                dash: *dash,
            })
            .collect()
    };

    let title = format!("throughput [records/s], {SMOOTHING_S:.0} s moving mean");
    let throughput = lines(&|run| smoothed_throughput(run, SMOOTHING_S));
    panel(&panels[0], &title, "records/s", end_s, &throughput, &[])?;

    let workers = lines(&|run| {
        run.series
            .iter()
            .map(|s| (s.at_s, s.workers.iter().sum::<usize>() as f64))
            .collect()
    });
    panel(
        &panels[1],
        "workers, all stages",
        "workers",
        end_s,
        &workers,
        &[],
    )?;

    let inflight = lines(&|run| {
        run.series
            .iter()
            .map(|s| (s.at_s, s.inflight_bytes as f64 / MIB))
            .collect()
    });
    let mut limits: Vec<Limit> = runs
        .iter()
        .filter_map(|(run, style, _)| {
            let budget: Vec<(f64, f64)> = run
                .series
                .iter()
                .filter_map(|s| Some((s.at_s, s.budget? as f64 / MIB)))
                .collect();
            (!budget.is_empty()).then(|| Limit {
                name: "budget",
                line: Line {
                    points: budget,
                    style: style.color.stroke_width(1),
                    dash: Dash::Dotted,
                },
            })
        })
        .collect();
    let memory = plot.scenario.machine.memory_bytes as f64 / MIB;
    limits.push(Limit {
        name: "machine memory",
        line: Line {
            points: vec![(0.0, memory), (end_s, memory)],
            style: MEMORY_COLOUR.stroke_width(1),
            dash: Dash::Solid,
        },
    });
    panel(
        &panels[2],
        "most bytes in flight [MiB]",
        "MiB",
        end_s,
        &inflight,
        &limits,
    )?;

    legend(&legend_area, &runs)
}

/// `(at_s, records/s)` over the trailing `span` seconds, at every tick of `run`.
fn smoothed_throughput(run: &RunResult, span: f64) -> Vec<(f64, f64)> {
    let series = &run.series;
    let mut start = 0;
    let (mut completed, mut seconds) = (0u64, 0.0);
    series
        .iter()
        .map(|sample| {
            completed += sample.completed;
            seconds += sample.window_s;
            while seconds - series[start].window_s >= span - 1e-9 {
                completed -= series[start].completed;
                seconds -= series[start].window_s;
                start += 1;
            }
            let rate = if seconds > 0.0 {
                completed as f64 / seconds
            } else {
                0.0
            };
            (sample.at_s, rate)
        })
        .collect()
}

/// A line of a panel.
struct Line {
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
    dash: Dash,
}

/// A reference line of a panel (a budget, the machine's memory): drawn when it is
/// within reach of the data, else named in the caption as off the scale.
struct Limit {
    name: &'static str,
    line: Line,
}

/// How far above the data's highest point a limit may be and still set the scale.
const LIMIT_REACH: f64 = 2.0;

/// One panel titled `title`: `lines` over time, and those of `limits` that fit the
/// scale; `unit` labels the y axis.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    unit: &str,
    end_s: f64,
    lines: &[Line],
    limits: &[Limit],
) -> Result<(), Box<dyn StdError>> {
    let highest = |line: &Line| line.points.iter().map(|(_, y)| *y).fold(0.0, f64::max);
    let data_top = lines.iter().map(highest).fold(0.0, f64::max);
    let (near, far): (Vec<&Limit>, Vec<&Limit>) = limits
        .iter()
        .partition(|l| data_top > 0.0 && highest(&l.line) <= LIMIT_REACH * data_top);
    let top = near
        .iter()
        .map(|l| highest(&l.line))
        .fold(data_top, f64::max);
    let top = if top > 0.0 { top * 1.08 } else { 1.0 };
    let mut off_scale: Vec<(&str, f64)> = Vec::new();
    for limit in far {
        let value = highest(&limit.line);
        match off_scale.last_mut() {
            Some((name, most)) if *name == limit.name => *most = most.max(value),
            _ => off_scale.push((limit.name, value)),
        }
    }
    let mut caption = title.to_owned();
    if !off_scale.is_empty() {
        let named: Vec<String> = off_scale
            .iter()
            .map(|(name, value)| format!("{name} {value:.0} {unit}"))
            .collect();
        caption += &format!("; off the scale: {}", named.join(", "));
    }
    let decimals = match top {
        t if t >= 10.0 => 0,
        t if t >= 1.0 => 1,
        _ => 2,
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(8)
        .margin_right(28)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end_s, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("virtual time [s]")
        .y_desc(unit)
        .label_style((FONT, 13))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for line in lines.iter().chain(near.iter().map(|l| &l.line)) {
        let points = line.points.iter().copied();
        match line.dash {
            Dash::Solid => chart.draw_series(LineSeries::new(points, line.style))?,
            Dash::Dashed => chart.draw_series(DashedLineSeries::new(points, 8, 5, line.style))?,
            Dash::Dotted => chart.draw_series(DashedLineSeries::new(points, 2, 4, line.style))?,
        };
    }
    Ok(())
}

/// The legend strip: a sample of every line and its name.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    runs: &[(&RunResult, ShapeStyle, Dash)],
) -> Result<(), Box<dyn StdError>> {
    let text = TextStyle::from((FONT, 16)).color(&BLACK);
    let mut entries: Vec<(&str, ShapeStyle, Dash)> = runs
        .iter()
        .map(|(run, style, dash)| {
            let name = if *dash == Dash::Dashed {
                "oracle"
            } else {
                run.policy.as_str()
            };
            (name, *style, *dash)
        })
        .collect();
    entries.push((
        "budget, in the policy's colour",
        BLACK.stroke_width(1),
        Dash::Dotted,
    ));
    entries.push(("machine memory", MEMORY_COLOUR.stroke_width(1), Dash::Solid));

    let (mut x, mut y) = (72, 18);
    for (name, style, dash) in entries {
        let width = 48 + 7 * name.chars().count() as i32;
        if x + width > COLUMN_WIDTH as i32 - 16 {
            x = 72;
            y += 24;
        }
        let line = [(x, y), (x + 28, y)];
        match dash {
            Dash::Solid => area.draw(&PathElement::new(line, style))?,
            Dash::Dashed => area.draw(&DashedPathElement::new(line, 8, 5, style))?,
            Dash::Dotted => area.draw(&DashedPathElement::new(line, 2, 4, style))?,
        }
        area.draw(&Text::new(name, (x + 34, y - 8), text.clone()))?;
        x += width;
    }
    Ok(())
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dash {
    Solid,
    Dashed,
    Dotted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RunEnd, TickSample};
    use brigade_scenario::parse_str;

    fn scenario(name: &str) -> Scenario {
        let text = format!(
            r#"
name = "{name}"
duration = "60s"
[machine]
memory = "64MiB"
[source]
rate = 100
size = {{ dist = "fixed", value = "1MiB" }}
[[stage]]
name = "only"
kind = "io"
service = {{ dist = "fixed", value = "1ms" }}
"#
        );
        parse_str(&text, "test.toml").unwrap()
    }

    fn run(policy: &str, rate: u64, budget: Option<u64>) -> RunResult {
        let series: Vec<TickSample> = (1..=60u32)
            .map(|t| TickSample {
                at_s: f64::from(t),
                window_s: 1.0,
                completed: rate * u64::from(t.min(10)) / 10,
                workers: vec![1 + t as usize % 3, 2],
                inflight_bytes: (u64::from(t) % 7) << 20,
                budget,
            })
            .collect();
        RunResult {
            policy: policy.to_owned(),
            end: RunEnd::Duration,
            elapsed_s: 60.0,
            duration_s: 60.0,
            completed: series.iter().map(|s| s.completed).sum(),
            last_completion_s: 60.0,
            worker_seconds: 240.0,
            peak_inflight_bytes: 6 << 20,
            source_timeouts: 0,
            spilled_bytes: 0,
            p99_latency_s: 0.1,
            changes: 0,
            reversals: 0,
            max_reversals_per_stage_phase: 0,
            series,
            decisions: Vec::new(),
            load_changes_s: vec![0.0],
        }
    }

    /// The contents of the SVG's `<text>` elements, trimmed.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let (_, rest) = element.split_once('>')?;
                let (content, _) = rest.split_once("</text>")?;
                Some(content.trim())
            })
            .collect()
    }

    #[test]
    fn writes_an_svg_naming_every_policy_and_the_oracle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.svg");
        let (a, b) = (scenario("first-scenario"), scenario("second-scenario"));
        let oracle = run("static:4", 100, None);
        let runs = [run("seda", 80, Some(16 << 20)), run("hill-climb", 90, None)];
        let plots = [
            PlotScenario {
                scenario: &a,
                oracle: &oracle,
                runs: runs.iter().collect(),
            },
            PlotScenario {
                scenario: &b,
                oracle: &oracle,
                runs: runs.iter().collect(),
            },
        ];
        plot(&path, &plots).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(r#"width="1920""#), "two columns");
        let texts = texts(&svg);
        for text in [
            "first-scenario",
            "second-scenario",
            "seda",
            "hill-climb",
            "oracle",
            "machine memory",
            "most bytes in flight [MiB]; off the scale: budget 16 MiB, machine memory 64 MiB",
            "throughput [records/s], 10 s moving mean",
            "workers, all stages",
            "virtual time [s]",
        ] {
            assert!(texts.contains(&text), "{text} in {texts:?}");
        }
        assert!(svg.matches("<polyline").count() >= 2 * 3 * 2, "solid lines");
    }

    #[test]
    fn throughput_is_a_trailing_moving_mean() {
        let mut run = run("x", 0, None);
        for (t, sample) in run.series.iter_mut().enumerate() {
            sample.completed = if t < 20 { 0 } else { 100 };
        }
        let points = smoothed_throughput(&run, 10.0);
        assert_eq!(points[19], (20.0, 0.0));
        assert_eq!(points[20], (21.0, 10.0), "1 s of 100 in the last 10 s");
        assert_eq!(points[24], (25.0, 50.0));
        assert_eq!(points[29], (30.0, 100.0));
        assert_eq!(points[59], (60.0, 100.0));
        assert_eq!(smoothed_throughput(&run, 1.0)[20], (21.0, 100.0));
    }

    #[test]
    fn an_unwritable_path_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("runs.svg");
        let s = scenario("x");
        let oracle = run("oracle", 10, None);
        let plots = [PlotScenario {
            scenario: &s,
            oracle: &oracle,
            runs: vec![],
        }];
        let err = plot(&path, &plots).unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }));
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
