//! The bulk endpoint knee experiment (issue 20): the same generated documents sent
//! by `brigade run` to a real bulk endpoint (`brigade_testkit::bulk::BulkServer`, a
//! fresh one per run) whose capacity has a concurrency knee, past which requests slow
//! and items come back with per-item 429s (and whole requests with 429 past four
//! times the knee), once per static writer count and once with `adaptive`; for a
//! knee at 4, then at 12. Prints a markdown table per knee (throughput, the 429s the
//! endpoint answered, the writers) and whether the goals were met: adaptive ≥ 0.95 ×
//! the best static throughput, with fewer 429s than any static count above the knee.
//!
//! ```sh
//! cargo build --release --bin brigade --example bulk_knee
//! target/release/examples/bulk_knee
//! ```
//!
//! Each run sends 250000 × the knee documents: about a minute at the best static
//! count, as a real load lasts minutes, so that adaptive's search from one writer
//! (some ten seconds) weighs on its result as it would on a real load, not as half of
//! it. The static counts are half the knee, the knee, and 2, 4 and 8 times it:
//! below half the knee a static count only loses (each writer adds its share), and a
//! run at one writer would last ten minutes.
//!
//! Environment: `BULK_DOCS` (documents, default 250000 × the knee), `BULK_RUNS` (runs of
//! each policy, the median reported; default 1), `BULK_KNEES` (default "4 12"),
//! `BULK_WRITERS` (static counts, default half the knee, the knee, 2, 4 and 8 × the
//! knee), `BRIGADE` (the binary, default `target/release/brigade`). Work files go to
//! `target/bulk-knee/`, and each input file is deleted after its knee's runs.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use brigade_testkit::bulk::{BulkServer, Capacity};

/// What one request costs the endpoint at full speed, whatever its size.
const PER_REQUEST: Duration = Duration::from_millis(5);
/// What one document costs it.
const PER_DOC: Duration = Duration::from_micros(100);
/// Documents per request, in every run (the batch the sink starts at; its queue holds
/// two, so that a static run's batches are full).
const BATCH: usize = 500;
/// Documents sent per unit of the knee: a run lasts about as long whatever the knee.
const DOCS_PER_KNEE: u64 = 250_000;

fn main() -> Result<()> {
    let docs_override: Option<u64> = std::env::var("BULK_DOCS")
        .ok()
        .map(|n| n.parse())
        .transpose()?;
    let runs: usize = env_or("BULK_RUNS", "1").parse()?;
    let knees = numbers(&env_or("BULK_KNEES", "4 12"))?;
    let writers_override = std::env::var("BULK_WRITERS")
        .ok()
        .map(|text| numbers(&text))
        .transpose()?;
    let brigade = PathBuf::from(env_or("BRIGADE", "target/release/brigade"));
    ensure!(
        brigade.exists(),
        "{} is missing: cargo build --release --bin brigade",
        brigade.display()
    );
    fs::create_dir_all("target/bulk-knee")?;
    // Absolute: the pipeline file's relative paths are relative to its directory.
    let work = &fs::canonicalize("target/bulk-knee")?;

    for &knee in &knees {
        let docs = docs_override.unwrap_or(DOCS_PER_KNEE * knee as u64);
        let input = work.join(format!("docs-{docs}.jsonl"));
        generate(&input, docs)?;
        let writers = writers_override
            .clone()
            .unwrap_or_else(|| vec![(knee / 2).max(1), knee, 2 * knee, 4 * knee, 8 * knee]);
        let mut policies: Vec<String> = writers.iter().map(|n| format!("static:2,{n}")).collect();
        policies.push("adaptive".to_owned());
        println!(
            "\n## bulk endpoint, knee {knee} (limit {}), {docs} documents in requests of {BATCH}\n",
            4 * knee
        );
        println!(
            "| policy | median s | docs/s | 429 items | 429 requests | dead-lettered | writers (most/last) | s to 95% |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut rows = Vec::new();
        for policy in &policies {
            let mut measured: Vec<Run> = (0..runs)
                .map(|_| run(&brigade, work, &input, docs, knee, policy))
                .collect::<Result<_>>()?;
            measured.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
            let middle = measured.swap_remove(measured.len() / 2);
            println!(
                "| {policy} | {:.2} | {:.0} | {} | {} | {} | {}/{} | {} |",
                middle.wall_s,
                docs as f64 / middle.wall_s,
                middle.items_throttled,
                middle.requests_throttled,
                middle.dead_lettered,
                middle.ticks.most,
                middle.ticks.last,
                middle
                    .ticks
                    .reach_95_s
                    .map_or("-".to_owned(), |s| format!("{s:.0}")),
            );
            rows.push((policy.clone(), middle));
        }
        goals(knee, docs, &writers, &rows);
        fs::remove_file(&input)?;
    }
    Ok(())
}

/// One run's figures.
struct Run {
    wall_s: f64,
    items_throttled: u64,
    requests_throttled: u64,
    dead_lettered: u64,
    ticks: Ticks,
}

impl Run {
    fn throttled(&self) -> u64 {
        self.items_throttled + self.requests_throttled
    }
}

/// Prints whether the goals held for one knee.
fn goals(knee: usize, docs: u64, writers: &[usize], rows: &[(String, Run)]) {
    let (statics, adaptive) = rows.split_at(rows.len() - 1);
    let adaptive = &adaptive[0].1;
    let rate = |run: &Run| docs as f64 / run.wall_s;
    let Some((best_policy, best)) = statics
        .iter()
        .max_by(|a, b| rate(&a.1).total_cmp(&rate(&b.1)))
    else {
        return;
    };
    let ratio = rate(adaptive) / rate(best);
    println!(
        "\ngoal adaptive ≥ 0.95 × best static ({best_policy}, {:.0} docs/s): {} ({ratio:.2}×)",
        rate(best),
        if ratio >= 0.95 { "met" } else { "NOT met" }
    );
    let above: Vec<(&str, u64)> = statics
        .iter()
        .zip(writers)
        .filter(|(_, &n)| n > knee)
        .map(|((policy, run), _)| (policy.as_str(), run.throttled()))
        .collect();
    let fewest = above.iter().map(|&(_, n)| n).min();
    let met = fewest.is_some_and(|fewest| adaptive.throttled() < fewest);
    println!(
        "goal fewer 429s than any static above the knee: {} (adaptive {}, statics above: {})",
        if met { "met" } else { "NOT met" },
        adaptive.throttled(),
        above
            .iter()
            .map(|(policy, n)| format!("{policy} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// One `brigade run` against a fresh endpoint with a knee at `knee`.
fn run(
    brigade: &Path,
    work: &Path,
    input: &Path,
    docs: u64,
    knee: usize,
    policy: &str,
) -> Result<Run> {
    let server = BulkServer::start(Capacity {
        knee,
        limit: 4 * knee,
        per_request: PER_REQUEST,
        per_doc: PER_DOC,
        ..Capacity::default()
    })?;
    let pipeline = work.join("bulk.toml");
    let dead = work.join("dead.jsonl");
    let ticks = work.join("ticks.jsonl");
    let report = work.join("report.json");
    for path in [&dead, &ticks] {
        if path.exists() {
            fs::remove_file(path)?;
        }
    }
    fs::write(&pipeline, pipeline_file(input, &server.url(), &dead))?;
    let started = Instant::now();
    let status = Command::new(brigade)
        .arg("run")
        .arg(&pipeline)
        .args(["--headless", "--report", "json", "--policy", policy])
        .arg("--metrics-log")
        .arg(&ticks)
        .stdout(fs::File::create(&report)?)
        .stderr(fs::File::create(work.join("brigade.log"))?)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", brigade.display()))?;
    let wall_s = started.elapsed().as_secs_f64();
    ensure!(
        status.success(),
        "brigade run --policy {policy} failed ({status}); see {}",
        work.join("brigade.log").display()
    );
    // Items refused with 429 on every attempt are dead-lettered: counted, not lost.
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(&report)?)
        .context("the run's report is not JSON")?;
    let dead_lettered = report["dead_lettered"].as_u64().unwrap_or(0);
    let stored = server.documents("bench").len() as u64;
    ensure!(
        stored + dead_lettered == docs,
        "brigade run --policy {policy}: the endpoint stored {stored} and {dead_lettered} \
         were dead-lettered, of {docs} documents"
    );
    let received = server.received();
    Ok(Run {
        wall_s,
        items_throttled: received.items_throttled,
        requests_throttled: received.throttled,
        dead_lettered,
        ticks: Ticks::read(&ticks)?,
    })
}

fn pipeline_file(input: &Path, url: &str, dead: &Path) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    format!(
        r#"name = "bulk-knee"

[runtime]
memory_budget = "256MiB"

[source]
type = "file"
path = {input}
format = "jsonl"

[sink]
type = "http"
url = {url}
format = "bulk"
index = "bench"
id_field = "id"
batch_size = {BATCH}
queue_capacity = {queue}

[dead_letter]
path = {dead}
"#,
        input = quoted(&input.to_string_lossy()),
        url = quoted(&format!("{url}/_bulk")),
        dead = quoted(&dead.to_string_lossy()),
        queue = 2 * BATCH,
    )
}

/// What a run's `--metrics-log` says of the sink.
struct Ticks {
    /// The most writers it had, and the last.
    most: u64,
    last: u64,
    /// Seconds until a 3-tick mean of its throughput first reached 95% of its final
    /// one (the mean of the last 10 s before the source ran out).
    reach_95_s: Option<f64>,
}

impl Ticks {
    fn read(path: &Path) -> Result<Ticks> {
        let text = fs::read_to_string(path).unwrap_or_default();
        let mut points = Vec::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let tick: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: a line is not JSON", path.display()))?;
            let snapshot = &tick["snapshot"];
            let window_s = snapshot["window_s"].as_f64().unwrap_or(0.0);
            let sink = snapshot["stages"].as_array().and_then(|s| s.last());
            let knobs = snapshot["knobs"]["stages"]
                .as_array()
                .and_then(|s| s.last());
            let (Some(sink), Some(knobs)) = (sink, knobs) else {
                continue;
            };
            let out = sink["records_out"].as_f64().unwrap_or(0.0);
            points.push(Point {
                at_s: snapshot["at_s"].as_f64().unwrap_or(0.0),
                rate: if window_s > 0.0 { out / window_s } else { 0.0 },
                workers: knobs["workers"].as_u64().unwrap_or(0),
                exhausted: snapshot["global"]["source"]["exhausted"]
                    .as_bool()
                    .unwrap_or(false),
            });
        }
        Ok(Ticks {
            most: points.iter().map(|p| p.workers).max().unwrap_or(0),
            last: points.last().map_or(0, |p| p.workers),
            reach_95_s: reach_95(&points),
        })
    }
}

struct Point {
    at_s: f64,
    rate: f64,
    workers: u64,
    exhausted: bool,
}

fn reach_95(points: &[Point]) -> Option<f64> {
    let reading: Vec<&Point> = points.iter().filter(|p| !p.exhausted).collect();
    let end = reading.last()?.at_s;
    let mut tail: Vec<&&Point> = reading.iter().filter(|p| p.at_s > end - 10.0).collect();
    if tail.len() < 3 {
        tail = reading[reading.len() * 2 / 3..].iter().collect();
    }
    let last = tail.iter().map(|p| p.rate).sum::<f64>() / tail.len().max(1) as f64;
    (0..reading.len()).find_map(|i| {
        let window = &reading[i.saturating_sub(2)..=i];
        let mean = window.iter().map(|p| p.rate).sum::<f64>() / window.len() as f64;
        (mean >= 0.95 * last).then_some(reading[i].at_s)
    })
}

/// Writes `docs` JSON lines with an `id` each, unless the file is there already.
fn generate(path: &Path, docs: u64) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut text = String::new();
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    for id in 0..docs {
        writeln!(
            text,
            r#"{{"id":{id},"name":"{}-{id}","qty":{},"price":{:.2}}}"#,
            words[(id % 6) as usize],
            id * 7 % 1000,
            (id * 13 % 10_000) as f64 / 3.0
        )?;
    }
    fs::write(path, text)?;
    Ok(())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn numbers(text: &str) -> Result<Vec<usize>> {
    text.split_whitespace()
        .map(|n| n.parse().with_context(|| format!("{n:?} is not a count")))
        .collect()
}
