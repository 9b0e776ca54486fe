//! The connectors' throughput beside `cat` and `jq` (issue 18), and the SQLite sink
//! with static writer counts beside the adaptive controller.
//!
//! ```sh
//! # The whole bench, 1 GiB of JSON lines (the script builds the library example first):
//! scripts/connectors-bench.sh
//! # or by hand:
//! cargo build --release --example connectors_lib
//! cargo bench --bench connectors
//! # A smoke run, a few seconds:
//! BENCH_SIZE=16MiB BENCH_SQLITE_SIZE=4MiB BENCH_RUNS=1 BENCH_TICK=250ms scripts/connectors-bench.sh
//! ```
//!
//! Settings, from the environment:
//!
//! - `BENCH_SIZE` (default `1GiB`): the JSON lines generated for the first table;
//! - `BENCH_SQLITE_SIZE` (default `256MiB`, `0` to skip): the input of the SQLite
//!   table, generated the same way (a smaller input: SQLite writes far fewer MiB/s);
//! - `BENCH_RUNS` (default 3): runs of each command, alternating commands; the tables
//!   give medians;
//! - `BENCH_TICK` (default: the pipeline's, 1s): `--tick` for every `brigade run`
//!   (and the library example's tick); a small input needs a short tick for the
//!   controller to act before the end.
//!
//! The input: JSON lines of 200–500 bytes (ids, a UUID, a timestamp, strings, numbers,
//! a nested object, an array of objects, free text with escapes), from a fixed seed,
//! in 8 files, cached in `target/connectors-bench/` and reused while the size, seed and
//! generator are the same (`rm -r target/connectors-bench` frees the space).
//!
//! The first table, each command measured for wall time and the child's peak RSS
//! (`wait4`'s `ru_maxrss`), output to a file in the same cache directory (same disk
//! as the input), deleted after each run:
//!
//! - `cat FILES > out`, then one fsync of `out`: the limit;
//! - `jq -c . FILES > out`, then one fsync of `out`: a tool people use for the job;
//! - `brigade run throughput.toml --headless --report json`: file source → `decode` →
//!   `fields` setting `"seen": true` → file sink (flushed and fsynced per batch), a
//!   64 MiB memory budget, the adaptive policy, a dead-letter file, no checkpoint;
//! - `connectors_lib` (`examples/connectors_lib.rs`): the same pipeline built with the
//!   library's API in a process of its own.
//!
//! Goals: brigade at least 5× jq's MiB/s; peak RSS under 256 MiB whatever the input
//! size; the CLI and the library of the same order.
//!
//! The second table: the same kind of input into SQLite (a key upsert on `id`, a
//! fresh database per run) with `--policy static:2,2,N` (2 `decode` workers and 2
//! `tag` workers, fixed: the comparison is about the sink) for N = 1, 2, 4, 8 writers,
//! and with `--policy adaptive`, which starts every stage at 1 worker and the sink at
//! batches of 100. Rows/s, the sink's final writer count and batch size (the last
//! line of `--metrics-log`), and the ratio to the best static run. Goal: adaptive at
//! least 0.95× the best static throughput, with no more writers than that best static
//! count + 1. A static policy sets its counts at the first tick: on a smoke-sized
//! input a run may end before it, which the "final writers" column shows (1 where N
//! was asked); those rows compare nothing.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use brigade::controller::units::parse_size;

const SEED: u64 = 0x6272_6967_6164_6531;
/// Bumped whenever the records change, so a cache of the old ones is not reused.
const GENERATOR_VERSION: u32 = 1;
const FILES: usize = 8;
const MIB: f64 = (1u64 << 20) as f64;
const RSS_GOAL: u64 = 256 << 20;
/// The SQLite runs: (label, `--policy`).
const SQLITE_POLICIES: [(&str, &str); 5] = [
    ("static, 1 writer", "static:2,2,1"),
    ("static, 2 writers", "static:2,2,2"),
    ("static, 4 writers", "static:2,2,4"),
    ("static, 8 writers", "static:2,2,8"),
    ("adaptive (from 1)", "adaptive"),
];

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) this bench
    // would generate and move a GiB, so it does nothing.
    if !std::env::args().skip(1).any(|arg| arg == "--bench") {
        return Ok(());
    }
    let settings = Settings::from_env()?;
    let bins = Binaries::locate()?;
    let cache = bins.target.join("connectors-bench");
    fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;

    let input = Input::generate(&cache, settings.size)?;
    println!(
        "input: {} records, {:.1} MiB in {} files ({})\n",
        input.records,
        input.bytes as f64 / MIB,
        input.files.len(),
        input.dir.display()
    );
    throughput(&settings, &bins, &cache, &input)?;

    if settings.sqlite_size > 0 {
        let input = Input::generate(&cache, settings.sqlite_size)?;
        println!(
            "\nSQLite input: {} records, {:.1} MiB in {} files\n",
            input.records,
            input.bytes as f64 / MIB,
            input.files.len()
        );
        sqlite(&settings, &bins, &cache, &input)?;
    }
    Ok(())
}

/// What the environment asks for.
struct Settings {
    size: u64,
    sqlite_size: u64,
    runs: usize,
    tick: Option<String>,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let size = |name: &str, default: &str| -> Result<u64> {
            let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
            parse_size(&text).with_context(|| format!("{name}={text}"))
        };
        let runs = match std::env::var("BENCH_RUNS") {
            Ok(text) => text
                .parse()
                .ok()
                .filter(|&runs| runs > 0)
                .with_context(|| format!("BENCH_RUNS={text}: a whole number, at least 1"))?,
            Err(_) => 3,
        };
        let input = size("BENCH_SIZE", "1GiB")?;
        ensure!(input > 0, "BENCH_SIZE=0: the first table needs some input");
        Ok(Settings {
            size: input,
            sqlite_size: size("BENCH_SQLITE_SIZE", "256MiB")?,
            runs,
            tick: std::env::var("BENCH_TICK").ok(),
        })
    }
}

/// The programs run, and the target directory they were built in.
struct Binaries {
    brigade: PathBuf,
    library: PathBuf,
    target: PathBuf,
}

impl Binaries {
    fn locate() -> Result<Binaries> {
        let brigade = PathBuf::from(env!("CARGO_BIN_EXE_brigade"));
        // This bench is target/<profile>/deps/connectors-<hash>; the example is
        // target/<profile>/examples/connectors_lib.
        let me = std::env::current_exe().context("cannot find this bench's executable")?;
        let profile = me
            .parent()
            .and_then(Path::parent)
            .context("the bench is not in target/<profile>/deps")?;
        let library = profile.join("examples").join("connectors_lib");
        if !library.is_file() {
            bail!(
                "{} is missing: build it first with `cargo build --release --example \
                 connectors_lib` (scripts/connectors-bench.sh does)",
                library.display()
            );
        }
        let target = profile
            .parent()
            .context("the bench is not in target/<profile>/deps")?
            .to_path_buf();
        Ok(Binaries {
            brigade,
            library,
            target,
        })
    }
}

/// One run of a command: wall time, the child's peak RSS and its exit status.
struct Measured {
    wall_s: f64,
    peak_rss: u64,
}

/// Runs `command` to its end, measuring it with `wait4`, and then `after` (inside the
/// timed span); an exit status other than 0 is an error.
fn measure(command: &mut Command, after: impl FnOnce() -> Result<()>) -> Result<Measured> {
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("a pid out of range")?;
    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet waited for (std's `Child` is dropped
        // without waiting); the pointers are to live locals.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
    drop(child);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{command:?} failed (wait status {status:#x})");
    }
    after()?;
    Ok(Measured {
        wall_s: start.elapsed().as_secs_f64(),
        // Linux gives ru_maxrss in KiB.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}

fn fsync(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot fsync {}", path.display()))
}

fn output_file(path: &Path) -> Result<Stdio> {
    File::create(path)
        .map(Stdio::from)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Removes what a run leaves, if there.
fn remove(paths: &[&Path]) -> Result<()> {
    for path in paths {
        match fs::remove_file(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn json_file(path: &Path) -> Result<serde_json::Value> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON: {text}", path.display()))
}

/// The first table: cat, jq, `brigade run` and the library, MiB/s and peak RSS.
fn throughput(settings: &Settings, bins: &Binaries, cache: &Path, input: &Input) -> Result<()> {
    let work = cache.join("throughput");
    fs::create_dir_all(&work)?;
    let out = work.join("out.jsonl");
    let dead = work.join("dead.jsonl");
    let report = work.join("report.json");
    let pipeline = work.join("throughput.toml");
    fs::write(&pipeline, throughput_pipeline(input))?;

    let tools = ["cat", "jq -c .", "brigade run (CLI)", "library (example)"];
    let mut runs: Vec<Vec<Measured>> = tools.iter().map(|_| Vec::new()).collect();
    for _ in 0..settings.runs {
        for (tool, measured) in runs.iter_mut().enumerate() {
            remove(&[&out, &dead])?;
            let run = match tool {
                0 => measure(
                    Command::new("cat")
                        .args(&input.files)
                        .stdout(output_file(&out)?),
                    || {
                        fsync(&out)?;
                        let written = fs::metadata(&out)?.len();
                        ensure!(written == input.bytes, "cat wrote {written} bytes");
                        Ok(())
                    },
                )?,
                1 => measure(
                    Command::new("jq")
                        .arg("-c")
                        .arg(".")
                        .args(&input.files)
                        .stdout(output_file(&out)?),
                    || fsync(&out),
                )?,
                2 => {
                    let mut command = Command::new(&bins.brigade);
                    command
                        .arg("run")
                        .arg(&pipeline)
                        .args(["--headless", "--report", "json"])
                        .stdout(output_file(&report)?)
                        .stderr(Stdio::null());
                    if let Some(tick) = &settings.tick {
                        command.args(["--tick", tick]);
                    }
                    let run = measure(&mut command, || Ok(()))?;
                    let written = json_file(&report)?["connectors"]["sink"]["written"].as_u64();
                    ensure!(
                        written == Some(input.records),
                        "brigade run wrote {written:?} of {} records",
                        input.records
                    );
                    run
                }
                _ => {
                    let mut command = Command::new(&bins.library);
                    command
                        .arg(input.glob())
                        .arg(&out)
                        .args(&settings.tick)
                        .stdout(output_file(&report)?);
                    let run = measure(&mut command, || Ok(()))?;
                    let written = json_file(&report)?["written"].as_u64();
                    ensure!(
                        written == Some(input.records),
                        "the library wrote {written:?} of {} records",
                        input.records
                    );
                    run
                }
            };
            measured.push(run);
        }
    }
    remove(&[&out, &dead])?;

    let mib = input.bytes as f64 / MIB;
    let rates: Vec<f64> = runs
        .iter()
        .map(|runs| mib / median(&mut runs.iter().map(|r| r.wall_s).collect::<Vec<_>>()))
        .collect();
    let rss: Vec<u64> = runs
        .iter()
        .map(|runs| runs.iter().map(|r| r.peak_rss).max().unwrap_or(0))
        .collect();
    let jq = rates[1];
    println!("| command | median s | MiB/s | × jq | peak RSS MiB |\n|---|---:|---:|---:|---:|");
    for (i, tool) in tools.iter().enumerate() {
        println!(
            "| {tool} | {:.2} | {:.1} | {:.2} | {:.1} |",
            mib / rates[i],
            rates[i],
            rates[i] / jq,
            rss[i] as f64 / MIB
        );
    }
    println!(
        "\n{:.1} MiB, median of {} runs each. cat and jq: output to a file on the same \
         disk, then one fsync; brigade: fsync per batch.",
        mib, settings.runs
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goal brigade ≥ 5× jq: {} (CLI {:.2}×, library {:.2}×)",
        verdict(rates[2] >= 5.0 * jq && rates[3] >= 5.0 * jq),
        rates[2] / jq,
        rates[3] / jq
    );
    println!(
        "goal peak RSS < 256 MiB: {} (CLI {:.1} MiB, library {:.1} MiB)",
        verdict(rss[2] < RSS_GOAL && rss[3] < RSS_GOAL),
        rss[2] as f64 / MIB,
        rss[3] as f64 / MIB
    );
    println!(
        "CLI / library speed: {:.2} (goal: the same order)",
        rates[2] / rates[3]
    );
    Ok(())
}

fn throughput_pipeline(input: &Input) -> String {
    format!(
        r#"name = "bench-throughput"

[runtime]
memory_budget = "64MiB"
policy = "adaptive"

[source]
type = "file"
path = {glob}
format = "jsonl"

[[stage]]
name = "tag"
type = "fields"
set = {{ seen = true }}

[sink]
type = "file"
path = "out.jsonl"

[dead_letter]
path = "dead.jsonl"
"#,
        glob = toml_string(&input.glob()),
    )
}

/// A TOML basic string: JSON's escapes are TOML's.
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// One SQLite run's figures.
struct SqliteRun {
    wall_s: f64,
    writers: Option<u64>,
    batch: Option<u64>,
}

/// The second table: static writer counts and adaptive into SQLite.
fn sqlite(settings: &Settings, bins: &Binaries, cache: &Path, input: &Input) -> Result<()> {
    let work = cache.join("sqlite");
    fs::create_dir_all(&work)?;
    let pipeline = work.join("sqlite.toml");
    fs::write(&pipeline, sqlite_pipeline(input))?;
    let report = work.join("report.json");
    let ticks = work.join("ticks.jsonl");
    let leftovers = [
        "out.db",
        "out.db-wal",
        "out.db-shm",
        "out.db-journal",
        "dead.jsonl",
    ]
    .map(|name| work.join(name));

    let mut runs: Vec<Vec<SqliteRun>> = SQLITE_POLICIES.iter().map(|_| Vec::new()).collect();
    for _ in 0..settings.runs {
        for ((_, policy), measured) in SQLITE_POLICIES.iter().zip(&mut runs) {
            remove(&leftovers.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
            remove(&[&ticks])?;
            let mut command = Command::new(&bins.brigade);
            command
                .arg("run")
                .arg(&pipeline)
                .args(["--headless", "--report", "json", "--policy", policy])
                .arg("--metrics-log")
                .arg(&ticks)
                .stdout(output_file(&report)?)
                .stderr(Stdio::null());
            if let Some(tick) = &settings.tick {
                command.args(["--tick", tick]);
            }
            let run = measure(&mut command, || Ok(()))?;
            let written = json_file(&report)?["connectors"]["sink"]["written"].as_u64();
            ensure!(
                written == Some(input.records),
                "brigade run --policy {policy} wrote {written:?} of {} rows",
                input.records
            );
            let (writers, batch) = last_sink_knobs(&ticks)?;
            measured.push(SqliteRun {
                wall_s: run.wall_s,
                writers,
                batch,
            });
        }
    }
    remove(&leftovers.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    remove(&[&ticks])?;

    let rows = input.records as f64;
    let rates: Vec<f64> = runs
        .iter()
        .map(|runs| rows / median(&mut runs.iter().map(|r| r.wall_s).collect::<Vec<_>>()))
        .collect();
    let statics = SQLITE_POLICIES.len() - 1;
    let (best, best_rate) = rates[..statics]
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .context("no static run")?;
    let shown = |value: Option<u64>| value.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "| policy | median s | rows/s | × best static | final writers | final batch |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for (i, (label, _)) in SQLITE_POLICIES.iter().enumerate() {
        // The final knobs of the median run (by wall time).
        let mut order: Vec<&SqliteRun> = runs[i].iter().collect();
        order.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
        let middle = order[order.len() / 2];
        println!(
            "| {label} | {:.2} | {:.0} | {:.2} | {} | {} |",
            rows / rates[i],
            rates[i],
            rates[i] / best_rate,
            shown(middle.writers),
            shown(middle.batch)
        );
    }
    let adaptive = &runs[statics];
    let most_writers = adaptive.iter().filter_map(|r| r.writers).max();
    let best_writers = [1u64, 2, 4, 8][best];
    println!(
        "\n{} rows ({:.1} MiB), median of {} runs each; decode and tag at 2 workers in the \
         static runs; the sink starts at batches of 100.",
        input.records,
        input.bytes as f64 / MIB,
        settings.runs
    );
    let met = rates[statics] >= 0.95 * best_rate
        && most_writers.is_some_and(|writers| writers <= best_writers + 1);
    println!(
        "goal adaptive ≥ 0.95 × best static ({}) with ≤ {} writers: {} ({:.2}×, {} writers)",
        SQLITE_POLICIES[best].0,
        best_writers + 1,
        if met { "met" } else { "NOT met" },
        rates[statics] / best_rate,
        shown(most_writers)
    );
    Ok(())
}

/// The sink's worker count and batch size in the last tick of a `--metrics-log`
/// (none when the run ended before its first tick).
fn last_sink_knobs(ticks: &Path) -> Result<(Option<u64>, Option<u64>)> {
    let text = fs::read_to_string(ticks).unwrap_or_default();
    let Some(line) = text.lines().last() else {
        return Ok((None, None));
    };
    let tick: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("{}: the last line is not JSON", ticks.display()))?;
    let sink = tick["snapshot"]["knobs"]["stages"]
        .as_array()
        .and_then(|stages| stages.last())
        .with_context(|| format!("{}: no stages' knobs", ticks.display()))?;
    Ok((sink["workers"].as_u64(), sink["batch_size"].as_u64()))
}

fn sqlite_pipeline(input: &Input) -> String {
    format!(
        r#"name = "bench-sqlite"

[runtime]
memory_budget = "64MiB"

[source]
type = "file"
path = {glob}
format = "jsonl"

[[stage]]
name = "tag"
type = "fields"
set = {{ seen = true }}

[sink]
type = "sqlite"
path = "out.db"
table = "events"
columns = ["id", "ts", "event", "user", "amount", "currency", "items", "seen"]
key = ["id"]

[dead_letter]
path = "dead.jsonl"
"#,
        glob = toml_string(&input.glob()),
    )
}

/// Generated JSON lines in files, cached.
struct Input {
    dir: PathBuf,
    files: Vec<PathBuf>,
    bytes: u64,
    records: u64,
}

impl Input {
    fn glob(&self) -> String {
        format!("{}/*.jsonl", self.dir.display())
    }

    /// The input of `size` bytes (a little more: whole records), generated into
    /// `cache` unless there already.
    fn generate(cache: &Path, size: u64) -> Result<Input> {
        let dir = cache.join(format!("data-{size}-{SEED:x}-v{GENERATOR_VERSION}"));
        let manifest = dir.join("manifest.json");
        if let Some(input) = Self::cached(&dir, &manifest) {
            return Ok(input);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        fs::create_dir_all(&dir)?;
        let started = Instant::now();
        let mut rng = Rng(SEED);
        let mut line = Vec::with_capacity(1024);
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut files = Vec::new();
        for part in 0..FILES as u64 {
            let path = dir.join(format!("part-{part:02}.jsonl"));
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            let goal = size * (part + 1) / FILES as u64;
            while bytes < goal {
                line.clear();
                write_record(records, &mut rng, &mut line);
                out.write_all(&line)?;
                bytes += line.len() as u64;
                records += 1;
            }
            out.flush()?;
            files.push(path);
        }
        let summary = serde_json::json!({ "records": records, "bytes": bytes });
        fs::write(&manifest, summary.to_string())?;
        eprintln!(
            "generated {records} records, {:.1} MiB in {:.1} s",
            bytes as f64 / MIB,
            started.elapsed().as_secs_f64()
        );
        Ok(Input {
            dir,
            files,
            bytes,
            records,
        })
    }

    /// The input already in `dir`, if its manifest is there and its files add up.
    fn cached(dir: &Path, manifest: &Path) -> Option<Input> {
        let summary: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(manifest).ok()?).ok()?;
        let files: Vec<PathBuf> = (0..FILES)
            .map(|part| dir.join(format!("part-{part:02}.jsonl")))
            .collect();
        let on_disk: u64 = files
            .iter()
            .map(|file| fs::metadata(file).map(|meta| meta.len()).ok())
            .sum::<Option<u64>>()?;
        let bytes = summary["bytes"].as_u64()?;
        (on_disk == bytes).then(|| Input {
            dir: dir.to_path_buf(),
            files,
            bytes,
            records: summary["records"].as_u64().unwrap_or(0),
        })
    }
}

/// splitmix64: fast, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }
}

const EVENTS: [&str; 6] = [
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "refund",
    "signup",
];
const COUNTRIES: [&str; 8] = ["DE", "FR", "GB", "US", "JP", "BR", "IN", "NG"];
const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];
const NAMES: [&str; 8] = [
    "Ada", "Grace", "Linus", "Zoë", "Ken", "Barbara", "Dennis", "Håkon",
];
const TAGS: [&str; 6] = ["new", "returning", "mobile", "desktop", "promo", "beta"];
const WORDS: [&str; 12] = [
    "fast",
    "order",
    "shipped",
    "late",
    "\\\"gift\\\"",
    "café",
    "box",
    "red",
    "size",
    "10%",
    "line\\nbreak",
    "ok",
];

/// One record, 200–500 bytes, as a JSON line.
fn write_record(id: u64, rng: &mut Rng, out: &mut Vec<u8>) {
    let user = rng.below(1_000_000);
    let r = rng.next();
    let _ = write!(
        out,
        r#"{{"id":{id},"uuid":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","ts":"2026-{:02}-{:02}T{:02}:{:02}:{:02}Z","event":"{}","user":{{"id":{user},"name":"{} {user}","email":"user{user}@example.com","country":"{}","premium":{}}},"amount":{}.{:02},"currency":"{}","tags":["#,
        r >> 32,
        (r >> 16) & 0xffff,
        r & 0xfff,
        rng.below(0x1_0000),
        rng.next() & 0xffff_ffff_ffff,
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.pick(&EVENTS),
        rng.pick(&NAMES),
        rng.pick(&COUNTRIES),
        rng.below(4) == 0,
        rng.below(2000),
        rng.below(100),
        rng.pick(&CURRENCIES),
    );
    for i in 0..1 + rng.below(3) {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, r#"{sep}"{}""#, rng.pick(&TAGS));
    }
    out.extend_from_slice(br#"],"items":["#);
    for i in 0..1 + rng.below(3) {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            out,
            r#"{sep}{{"sku":"SKU-{:05}","qty":{},"price":{}.{:02}}}"#,
            rng.below(100_000),
            1 + rng.below(5),
            rng.below(500),
            rng.below(100)
        );
    }
    out.extend_from_slice(br#"],"note":""#);
    for i in 0..rng.below(20) {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(rng.pick(&WORDS).as_bytes());
    }
    out.extend_from_slice(b"\"}\n");
}
