//! Does the simulator tell the truth? Each scenario sized for a 2-core machine runs
//! twice with the `adaptive` policy: in the simulator (what
//! `brigade sim FILE --policy adaptive --format json` reports as `throughput`) and for
//! real, on the runtime with synthetic stages (`brigade-synthetic`), for the same
//! time. It prints them side by side and fails if a real throughput is not within 15%
//! of the simulated one.
//!
//! The real throughput is the simulator's measure: records the sink finished during
//! the run's time, over that time (the controller's ticks up to it). The runtime's own
//! report (completed / elapsed, the drain of what is still queued included) is shown
//! beside it, and so are the workers per stage at the end of both runs and, since the
//! machine may be shared, the cores that other processes used meanwhile (Linux): a
//! real figure taken beside a busy neighbour says little.
//!
//! ```sh
//! cargo bench --bench truth                              # 60 s a scenario, about 2 minutes
//! cargo bench --bench truth -- --seconds 20 --policy static:4 scenarios/two-core-sink.toml
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use brigade_controller::from_name;
use brigade_scenario::{self as scenario, Scenario};
use brigade_sim::Simulation;
use brigade_synthetic::{start, Options};

const DEFAULT_POLICY: &str = "adaptive";
const SCENARIOS: [&str; 2] = [
    "scenarios/two-core-etl.toml",
    "scenarios/two-core-sink.toml",
];
/// How far a real throughput may be from the simulated one, as a share of it.
const TOLERANCE: f64 = 0.15;
/// Cores other processes may take during a real run before its figure is disturbed.
const DISTURBED_CORES: f64 = 0.2;

/// One scenario's figures.
struct Row {
    name: String,
    sim: f64,
    sim_workers: Vec<usize>,
    real: f64,
    real_with_drain: f64,
    real_workers: Vec<usize>,
    /// Cores the real run used.
    ours: f64,
    /// Cores other processes used during the real run, if known.
    others: Option<f64>,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario asked (`--seconds N`, `--policy NAME` and files; cargo's own
/// `--bench` is ignored); true if all agree.
fn run() -> Result<bool> {
    let mut seconds = None;
    let mut policy = DEFAULT_POLICY.to_owned();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds = Some(value.parse::<f64>().context("--seconds needs a number")?);
            }
            "--policy" => {
                policy = args.next().context("--policy needs a name")?;
                from_name(&policy)?;
            }
            _ if arg.starts_with('-') => bail!("unknown option {arg}"),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        files = SCENARIOS.iter().map(|file| root.join(file)).collect();
    }
    let mut rows = Vec::new();
    for file in &files {
        let mut scenario = scenario::load(file)?;
        if let Some(seconds) = seconds {
            scenario.duration_s = seconds;
        }
        eprintln!(
            "{}: {policy}, simulated, then {:.0} s for real...",
            scenario.name, scenario.duration_s
        );
        rows.push(compare(&scenario, &policy)?);
    }
    println!(
        "{:<16} {:>12} {:>12} {:>9} {:>17} {:>13} {:>15}  {:<14} {:<14}",
        "scenario",
        "sim [rec/s]",
        "real [rec/s]",
        "real/sim",
        "real+drain [r/s]",
        "ours [cores]",
        "others [cores]",
        "sim workers",
        "real workers"
    );
    let mut agree = true;
    for row in &rows {
        let ratio = row.real / row.sim;
        let ok = (1.0 - TOLERANCE..=1.0 + TOLERANCE).contains(&ratio);
        agree &= ok;
        println!(
            "{:<16} {:>12.1} {:>12.1} {:>9.3} {:>17.1} {:>13.2} {:>15}  {:<14} {:<14}{}",
            row.name,
            row.sim,
            row.real,
            ratio,
            row.real_with_drain,
            row.ours,
            row.others
                .map_or("?".to_owned(), |cores| format!("{cores:.2}")),
            format!("{:?}", row.sim_workers),
            format!("{:?}", row.real_workers),
            if ok { "" } else { "  <- disagree" }
        );
    }
    let busiest = rows.iter().filter_map(|row| row.others).fold(0.0, f64::max);
    if busiest > DISTURBED_CORES {
        println!(
            "note: other processes used up to {busiest:.2} cores during the real runs; \
             their figures are disturbed, run again on a quieter machine"
        );
    }
    Ok(agree)
}

/// The scenario in the simulator, then for real for its duration.
fn compare(scenario: &Scenario, policy: &str) -> Result<Row> {
    let sim = Simulation::new(scenario, from_name(policy)?, policy).run();
    let duration = Duration::from_secs_f64(scenario.duration_s);
    let busy_before = machine_busy_s();
    let options = Options::default()
        .duration(duration)
        .policy(from_name(policy)?);
    let demo = start(scenario, options)?;
    let monitor = demo.monitor();
    let finished = demo.wait();
    let busy = busy_before
        .zip(machine_busy_s())
        .map(|(before, after)| after - before);
    if let Some(failure) = finished.failure {
        bail!("{}: the real run failed: {failure}", scenario.name);
    }
    let history = monitor.history();
    let ours: f64 = history
        .iter()
        .map(|tick| tick.global.cpu_percent / 100.0 * tick.window_s)
        .sum();
    // The ticks up to the end of the run's time (the last one closes a little late).
    let ticks: Vec<_> = history
        .iter()
        .filter(|tick| tick.at_s <= scenario.duration_s + scenario.tick_s / 2.0)
        .collect();
    let last = ticks.last().context("the real run closed no tick")?;
    let written: u64 = ticks
        .iter()
        .filter_map(|tick| tick.stages.last())
        .map(|sink| sink.records_out)
        .sum();
    Ok(Row {
        name: scenario.name.clone(),
        sim: sim.throughput(),
        sim_workers: sim
            .series
            .last()
            .map_or_else(Vec::new, |t| t.workers.clone()),
        real: written as f64 / last.at_s,
        real_with_drain: finished.throughput(),
        real_workers: last.knobs.stages.iter().map(|s| s.workers).collect(),
        ours: ours / finished.report.elapsed_s,
        others: busy.map(|busy| (busy - ours).max(0.0) / finished.report.elapsed_s),
    })
}

/// CPU time the whole machine has spent busy, seconds (Linux: `/proc/stat`).
fn machine_busy_s() -> Option<f64> {
    /// Clock ticks per second of `/proc` CPU times (USER_HZ).
    const TICKS_PER_S: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let times: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_ascii_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let busy: u64 = times.iter().take(8).sum::<u64>() - times.get(3)? - times.get(4)?;
    Some(busy as f64 / TICKS_PER_S)
}
