//! What one frame of the dashboard costs, so that it keeps its promise: a redraw at
//! least 4 times a second (every 150 ms by default) while the pipeline runs flat out on
//! the same cores.
//!
//! The dashboard is fed 300 ticks of a simulated run of the built-in demo (real
//! Snapshots, histograms included, and the controller's decisions), then:
//!
//! - `frame_120x40` and `frame_200x60`: one full redraw (every widget rendered into a
//!   buffer and diffed against the last, as on a terminal) at two terminal sizes;
//! - `ingest`: taking in one tick (a copy of its Snapshot, as the live feed makes;
//!   decoding its histograms; updating the history).
//!
//! A frame that takes a few milliseconds leaves the 250 ms budget of 4 redraws a
//! second nearly whole, even with the pipeline's threads taking most of the cores.

use brigade_controller::from_name;
use brigade_sim::{Simulation, TickOutput};
use brigade_tui::{App, Options};
use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Ticks of history the dashboard holds, as in a long session.
const TICKS: usize = 300;

/// The first `TICKS` ticks of an adaptive run of the built-in demo.
fn ticks() -> Vec<TickOutput> {
    let scenario = brigade_synthetic::builtin();
    let policy = from_name("adaptive").expect("adaptive is a policy");
    let mut simulation = Simulation::new(&scenario, policy, "adaptive").with_histograms();
    std::iter::from_fn(|| simulation.step())
        .take(TICKS)
        .collect()
}

fn fed(ticks: &[TickOutput]) -> App {
    let mut app = App::new(Options {
        title: "demo · adaptive".into(),
        ..Options::default()
    });
    for tick in ticks {
        app.ingest(tick.snapshot.clone(), tick.decisions.clone());
    }
    app
}

fn dashboard(c: &mut Criterion) {
    let ticks = ticks();
    let app = fed(&ticks);
    let mut group = c.benchmark_group("dashboard");
    for (name, cols, rows) in [("frame_120x40", 120, 40), ("frame_200x60", 200, 60)] {
        let mut terminal = Terminal::new(TestBackend::new(cols, rows)).expect("a test terminal");
        group.bench_function(name, |b| {
            b.iter(|| {
                terminal
                    .draw(|frame| app.render(frame))
                    .expect("drawing into memory");
            });
        });
    }
    let last = ticks.last().expect("the run has ticks");
    let mut app = fed(&ticks);
    // The history is a ring: taking in one more tick costs the same every time.
    group.bench_function("ingest", |b| {
        b.iter(|| app.ingest(last.snapshot.clone(), last.decisions.clone()));
    });
    group.finish();
}

criterion_group!(benches, dashboard);
criterion_main!(benches);
