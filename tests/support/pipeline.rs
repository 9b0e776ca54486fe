//! Helpers for the tests that run `brigade run` on real files: generated inputs with
//! ids, the binary started and stopped, the sink's lines counted by id, a seeded RNG.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory holding a pipeline file, its inputs and its outputs.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// A new empty directory with an `in/` folder for inputs.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        fs::create_dir(dir.path().join("in")).expect("in/ is created");
        Self { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` inside the directory.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.join(name), bytes).expect("the file is written");
    }

    /// Writes `files` JSON-lines inputs `in/NN.jsonl` of `per_file` records each,
    /// `{"id": N, "pad": "…"}` with ids `0..files * per_file`; returns the count.
    pub fn ids_input(&self, files: u64, per_file: u64) -> u64 {
        for file in 0..files {
            let text: String = (file * per_file..(file + 1) * per_file)
                .map(|id| format!("{{\"id\":{id},\"pad\":\"{}\"}}\n", pad(id)))
                .collect();
            self.write(&format!("in/{file:02}.jsonl"), text);
        }
        files * per_file
    }

    /// `brigade run p.toml --headless --report json` in the directory, not started.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_brigade"));
        command
            .args(["run", "p.toml", "--headless", "--report", "json"])
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the pipeline to its end; returns the output and the parsed report.
    pub fn run(&self) -> (Output, serde_json::Value) {
        let output = self.command().output().expect("brigade runs");
        let report = report(&output);
        (output, report)
    }

    /// Starts the pipeline.
    pub fn spawn(&self) -> Child {
        self.command().spawn().expect("brigade starts")
    }
}

/// The pad value of record `id`, to check a record arrived whole.
pub fn pad(id: u64) -> String {
    format!("p{:x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40)
}

/// The JSON report on `output`'s standard output, with its standard error in the
/// panic message when there is none.
pub fn report(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "no JSON report ({error}): status {:?}\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The ids of a JSON-lines sink file, in order, every line checked to be one whole
/// record (`{"id", "pad", …}` with the right pad): a torn or corrupt line fails.
pub fn sink_ids(path: &Path) -> Vec<u64> {
    let file = fs::File::open(path).expect("the sink file exists");
    BufReader::new(file)
        .split(b'\n')
        .enumerate()
        .map(|(index, line)| {
            let line = line.expect("the sink file reads");
            let value: serde_json::Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                panic!(
                    "{}:{}: not a JSON line ({e}): {:?}",
                    path.display(),
                    index + 1,
                    String::from_utf8_lossy(&line)
                )
            });
            let id = value["id"].as_u64().expect("the line has an id");
            assert_eq!(value["pad"], pad(id), "line {} arrived whole", index + 1);
            id
        })
        .collect()
}

/// How many times each id in `0..total` occurs in `ids`; panics naming an id out of
/// range.
pub fn occurrences(ids: &[u64], total: u64) -> Vec<u32> {
    let mut counts = vec![0u32; total as usize];
    for &id in ids {
        assert!(id < total, "id {id} was never input");
        counts[id as usize] += 1;
    }
    counts
}

/// Asserts every id in `0..total` occurs at least once in `counts`, naming the first
/// missing ones.
pub fn assert_none_missing(counts: &[u32]) {
    let missing: Vec<usize> = (0..counts.len()).filter(|&id| counts[id] == 0).collect();
    assert!(
        missing.is_empty(),
        "{} ids never reached the sink, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "signal {signal} sent"
    );
}

/// Waits until `ready` holds, polling every 10 ms, for at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number of complete lines (ending in `\n`) of a file, 0 if it is missing.
pub fn complete_lines(path: &Path) -> usize {
    fs::read(path).map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count())
}

/// A small seeded generator (SplitMix64), so a failing run can be repeated with its
/// printed seed.
pub struct Rng(u64);

impl Rng {
    /// From `BRIGADE_TEST_SEED` if set, else from the clock; prints the seed.
    pub fn from_env_or_clock(test: &str) -> Self {
        let seed = std::env::var("BRIGADE_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (repeat with BRIGADE_TEST_SEED={seed})");
        Self(seed)
    }

    /// A number in `low..high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        low + (z ^ (z >> 31)) % (high - low)
    }
}

/// Reads a SQLite table through python3's `sqlite3` as `(id, pad)` rows, sorted.
pub fn sqlite_rows(db: &Path, table: &str) -> Vec<(u64, String)> {
    let script = format!(
        "import sqlite3, sys\n\
         for id, pad in sqlite3.connect(sys.argv[1]).execute('SELECT id, pad FROM {table} ORDER BY id'):\n\
         \x20   print(id, pad)\n"
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .arg(db)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 rows")
        .lines()
        .map(|line| {
            let (id, pad) = line.split_once(' ').expect("id pad");
            (id.parse().expect("an integer id"), pad.to_owned())
        })
        .collect()
}
