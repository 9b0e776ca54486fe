//! Writes random scenario files, for checking the policies on pipelines nobody tuned
//! them on: `cargo run --release -p brigade-sim --example random_scenarios -- DIR
//! FROM TO` writes `DIR/gen-FROM.toml` up to `DIR/gen-(TO-1).toml`, each drawn from
//! its own number, so the same numbers give the same files.
//!
//! Each number first draws a kind, then the pipeline:
//!
//! - **classic** (two in five): ten minutes of one to four stages, the last an io sink:
//!   cpu and io stages with lognormal service times, sometimes a per-MiB cost, a
//!   fan-out or filter, a size change or transient errors; sinks with contention,
//!   sometimes batching; a machine of 2 to 8 cores; sometimes an operator's budget,
//!   an idle timeout, giants; half of them with a stage slowing down or speeding up
//!   mid-run, a quarter with the source's rate dropping.
//! - **heavy tail**: Pareto record sizes with α from 1.05 to 1.5 and giants of 200 to
//!   500 MiB on a 3 to 8 GiB machine, three stages that shrink then double the bytes,
//!   with or without a budget.
//! - **stall**: a classic pipeline whose sink (or another io stage) locks up for one to
//!   three minutes, often with a source that dies or reconnects when unread.
//! - **deep**: six stages, two of them contended io stages.
//! - **flash crowd**: the source's rate jumps 8 to 16 times for six minutes, then
//!   settles at 2 to 4 times its start.
//! - **errors**: one or more stages failing 5% to 30% of their calls transiently.
//!
//! Then, for example:
//!
//! ```sh
//! cargo run --release -p brigade-sim --example random_scenarios -- /tmp/gen 1 31
//! cargo run --release -- sim /tmp/gen/*.toml --format json
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

/// splitmix64: small, fast, and the same everywhere.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[(self.next() % options.len() as u64) as usize]
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// A duration in microseconds, written in milliseconds.
fn ms(us: f64) -> String {
    format!("\"{:.3}ms\"", us / 1000.0)
}

/// What a number draws first: the shape of its pipeline.
#[derive(Clone, Copy)]
enum Kind {
    Classic,
    HeavyTail,
    Stall,
    Deep,
    Flash,
    Errors,
}

/// The scenario file drawn from `number`.
fn scenario(number: u64) -> String {
    let mut d = Draw(number.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let kind = d.pick(&[
        Kind::Classic,
        Kind::Classic,
        Kind::Classic,
        Kind::Classic,
        Kind::HeavyTail,
        Kind::Stall,
        Kind::Deep,
        Kind::Flash,
        Kind::Errors,
        Kind::HeavyTail,
    ]);
    let mut f = String::new();
    match kind {
        Kind::Classic => classic(&mut d, &mut f, number),
        Kind::HeavyTail => heavy_tail(&mut d, &mut f, number),
        Kind::Stall => stall(&mut d, &mut f, number),
        Kind::Deep => deep(&mut d, &mut f, number),
        Kind::Flash => flash(&mut d, &mut f, number),
        Kind::Errors => errors(&mut d, &mut f, number),
    }
    f
}

/// The name, duration and seed; the machine.
fn header(f: &mut String, number: u64, kind: &str, duration: &str, cores: u64, memory_gib: u64) {
    let _ = writeln!(
        f,
        "name = \"gen-{number}\"\ndescription = \"{kind}\"\nduration = \"{duration}\"\nseed = {number}"
    );
    let _ = writeln!(
        f,
        "\n[machine]\ncores = {cores}\nmemory = \"{memory_gib}GiB\""
    );
}

/// An operator's budget, a share of the machine's memory, half the time.
fn maybe_budget(d: &mut Draw, f: &mut String, memory_gib: u64) {
    if d.chance(0.5) {
        let share = d.pick(&[8u64, 4, 2]);
        let _ = writeln!(
            f,
            "\n[runtime]\nmemory_budget = \"{}MiB\"",
            memory_gib * 1024 / share
        );
    }
}

/// A lognormal source of `rate` records/s, sometimes with an idle timeout.
fn source(d: &mut Draw, f: &mut String, rate: u64) {
    let median_kib = d.pick(&[1u64, 4, 16, 64]);
    let p99_kib = median_kib * d.pick(&[4u64, 16, 64]);
    let _ = writeln!(f, "\n[source]\nrate = {rate}");
    if d.chance(0.35) {
        idle_timeout(d, f, &[20, 30, 60]);
    }
    let _ = writeln!(
        f,
        "size = {{ dist = \"lognormal\", median = \"{median_kib}KiB\", p99 = \"{p99_kib}KiB\" }}"
    );
}

fn idle_timeout(d: &mut Draw, f: &mut String, seconds: &[u64]) {
    let _ = writeln!(
        f,
        "idle_timeout = \"{}s\"\non_timeout = \"{}\"",
        d.pick(seconds),
        d.pick(&["fail", "reconnect"])
    );
}

fn giants(d: &mut Draw, f: &mut String, every: &[u64], mib: &[u64]) {
    let _ = writeln!(
        f,
        "\n[[source.giant]]\nevery = {}\nsize = \"{}MiB\"",
        d.pick(every),
        d.pick(mib)
    );
}

/// A stage with a lognormal service time around `median_us`.
fn stage(d: &mut Draw, f: &mut String, name: &str, kind: &str, median_us: f64) {
    let spread = d.pick(&[3.0, 5.0, 10.0]);
    let _ = writeln!(
        f,
        "\n[[stage]]\nname = \"{name}\"\nkind = \"{kind}\"\nservice = {{ dist = \"lognormal\", median = {}, p99 = {} }}",
        ms(median_us),
        ms(median_us * spread)
    );
}

/// An io stage's contention, `heavy` for a stage that is meant to have a knee.
fn contention(d: &mut Draw, f: &mut String, heavy: bool) {
    let (sigma, kappa) = if heavy {
        (d.pick(&[0.03, 0.05, 0.08]), d.pick(&[0.001, 0.002, 0.003]))
    } else {
        (
            d.pick(&[0.0, 0.01, 0.03, 0.05]),
            d.pick(&[0.0, 0.0005, 0.001, 0.002]),
        )
    };
    let _ = writeln!(f, "contention = {sigma}\ncoherency = {kappa}");
}

/// One to four stages, the last an io sink, each drawn as the module docs say; the
/// number of stages.
fn classic_stages(d: &mut Draw, f: &mut String) -> u64 {
    let stages = d.pick(&[1, 2, 2, 3, 3, 4]);
    for i in 0..stages {
        let sink = i == stages - 1;
        let kind = if sink {
            "io"
        } else {
            d.pick(&["cpu", "cpu", "io"])
        };
        let median_us = if sink {
            d.between(1000.0, 10000.0)
        } else {
            d.between(50.0, 2000.0)
        };
        stage(d, f, &format!("s{i}"), kind, median_us);
        if d.chance(0.3) {
            let _ = writeln!(f, "per_mib = \"{}ms\"", d.pick(&[2, 10, 40]));
        }
        if !sink && d.chance(0.2) {
            let _ = writeln!(f, "output_ratio = {}", d.pick(&[0.5, 2.0]));
        }
        if !sink && d.chance(0.2) {
            let _ = writeln!(f, "size_ratio = {}", d.pick(&[0.5, 1.5]));
        }
        if kind == "io" {
            contention(d, f, false);
        }
        if d.chance(0.15) {
            let _ = writeln!(f, "error_rate = 0.01");
        }
        if sink && d.chance(0.25) {
            let _ = writeln!(f, "batch = true");
        }
    }
    stages
}

fn classic(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[2, 4, 8]);
    let memory_gib = d.pick(&[2u64, 4, 8]);
    header(f, number, "classic", "10m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[2000u64, 5000, 10000, 50000]);
    source(d, f, rate);
    if d.chance(0.2) {
        giants(d, f, &[20000, 50000, 100000], &[50, 150, 300]);
    }
    let stages = classic_stages(d, f);
    if d.chance(0.5) {
        let stage = d.next() % stages;
        let at = d.pick(&[120, 240, 360]);
        let scale = d.pick(&[2.0, 4.0, 0.5]);
        let _ = writeln!(
            f,
            "\n[[phase]]\nat = \"{at}s\"\nstage = \"s{stage}\"\nservice_scale = {scale:?}"
        );
        if d.chance(0.5) {
            let _ = writeln!(
                f,
                "\n[[phase]]\nat = \"{}s\"\nstage = \"s{stage}\"\nservice_scale = 1.0",
                at + 120
            );
        }
    }
    if d.chance(0.25) {
        let _ = writeln!(
            f,
            "\n[[phase]]\nat = \"{}s\"\nsource_rate = {}",
            d.pick(&[180, 300]),
            rate / d.pick(&[2, 4])
        );
    }
}

fn heavy_tail(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[2, 4]);
    let memory_gib = d.pick(&[3u64, 4, 8]);
    header(f, number, "heavy tail", "10m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[500u64, 1000, 2000, 5000]);
    let _ = writeln!(f, "\n[source]\nrate = {rate}");
    if d.chance(0.3) {
        idle_timeout(d, f, &[20, 30, 60]);
    }
    let _ = writeln!(
        f,
        "size = {{ dist = \"pareto\", min = \"{}KiB\", alpha = {} }}",
        d.pick(&[2, 8, 32]),
        d.pick(&[1.05, 1.1, 1.2, 1.5])
    );
    giants(d, f, &[5000, 20000, 50000], &[200, 350, 500]);
    let median_us = d.between(200.0, 1500.0);
    stage(d, f, "shrink", "cpu", median_us);
    let _ = writeln!(
        f,
        "per_mib = \"{}ms\"\nsize_ratio = 0.5",
        d.pick(&[2, 5, 10])
    );
    let median_us = d.between(200.0, 1500.0);
    stage(d, f, "double", "cpu", median_us);
    let _ = writeln!(
        f,
        "per_mib = \"{}ms\"\nsize_ratio = 2.0",
        d.pick(&[2, 5, 10])
    );
    let median_us = d.between(1000.0, 8000.0);
    stage(d, f, "write", "io", median_us);
    let _ = writeln!(f, "per_mib = \"{}ms\"", d.pick(&[5, 10, 20]));
    contention(d, f, false);
    if d.chance(0.3) {
        let _ = writeln!(f, "batch = true");
    }
}

fn stall(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[2, 4, 8]);
    let memory_gib = d.pick(&[2u64, 4, 8]);
    header(f, number, "stall", "12m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[2000u64, 5000, 10000]);
    let median_kib = d.pick(&[1u64, 4, 16, 64]);
    let _ = writeln!(f, "\n[source]\nrate = {rate}");
    if d.chance(0.7) {
        idle_timeout(d, f, &[10, 20, 30]);
    }
    let _ = writeln!(
        f,
        "size = {{ dist = \"lognormal\", median = \"{median_kib}KiB\", p99 = \"{}KiB\" }}",
        median_kib * d.pick(&[4u64, 16])
    );
    if d.chance(0.3) {
        giants(d, f, &[20000, 50000], &[100, 180]);
    }
    let stages = classic_stages(d, f);
    let _ = writeln!(
        f,
        "\n[[phase]]\nat = \"{}s\"\nstage = \"s{}\"\nstall = \"{}s\"",
        d.pick(&[120, 180, 300]),
        stages - 1,
        d.pick(&[60, 120, 180])
    );
}

fn deep(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[4, 8]);
    let memory_gib = d.pick(&[4u64, 8]);
    header(f, number, "deep", "10m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[2000u64, 5000, 10000, 20000]);
    source(d, f, rate);
    let contended = [d.next() % 5, 5];
    for i in 0..6u64 {
        if contended.contains(&i) {
            let median_us = d.between(1000.0, 8000.0);
            stage(d, f, &format!("s{i}"), "io", median_us);
            contention(d, f, true);
        } else {
            let kind = d.pick(&["cpu", "cpu", "io"]);
            let median_us = d.between(50.0, 1000.0);
            stage(d, f, &format!("s{i}"), kind, median_us);
            if kind == "io" {
                contention(d, f, false);
            }
        }
    }
    if d.chance(0.3) {
        let _ = writeln!(f, "batch = true");
    }
}

fn flash(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[2, 4, 8]);
    let memory_gib = d.pick(&[2u64, 4, 8]);
    header(f, number, "flash crowd", "15m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[200u64, 500, 1000, 2000]);
    source(d, f, rate);
    classic_stages(d, f);
    let at = d.pick(&[120, 180]);
    let _ = writeln!(
        f,
        "\n[[phase]]\nat = \"{at}s\"\nsource_rate = {}",
        rate * d.pick(&[8, 16])
    );
    let _ = writeln!(
        f,
        "\n[[phase]]\nat = \"{}s\"\nsource_rate = {}",
        at + 360,
        rate * d.pick(&[2, 3, 4])
    );
}

fn errors(d: &mut Draw, f: &mut String, number: u64) {
    let cores = d.pick(&[2, 4, 8]);
    let memory_gib = d.pick(&[2u64, 4, 8]);
    header(f, number, "errors", "10m", cores, memory_gib);
    maybe_budget(d, f, memory_gib);
    let rate = d.pick(&[2000u64, 5000, 10000]);
    source(d, f, rate);
    let stages = d.pick(&[2u64, 3, 4]);
    for i in 0..stages {
        let sink = i == stages - 1;
        let kind = if sink { "io" } else { d.pick(&["cpu", "io"]) };
        let median_us = if sink {
            d.between(1000.0, 10000.0)
        } else {
            d.between(50.0, 2000.0)
        };
        stage(d, f, &format!("s{i}"), kind, median_us);
        if kind == "io" {
            contention(d, f, false);
        }
        if sink || d.chance(0.4) {
            let _ = writeln!(f, "error_rate = {}", d.pick(&[0.05, 0.1, 0.2, 0.3]));
        }
        if sink && d.chance(0.3) {
            let _ = writeln!(f, "batch = true");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, from, to] = args.as_slice() else {
        return Err("usage: random_scenarios DIR FROM TO".into());
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    for number in from.parse::<u64>()?..to.parse::<u64>()? {
        let path = dir.join(format!("gen-{number}.toml"));
        let text = scenario(number);
        brigade_scenario::parse_str(&text, &path.to_string_lossy())?;
        std::fs::write(path, text)?;
    }
    Ok(())
}
