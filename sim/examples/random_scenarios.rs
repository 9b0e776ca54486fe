//! Writes random scenario files, for checking the policies on pipelines nobody tuned
//! them on: `cargo run --release -p brigade-sim --example random_scenarios -- DIR
//! FROM TO` writes `DIR/gen-FROM.toml` up to `DIR/gen-(TO-1).toml`, each drawn from
//! its own number, so the same numbers give the same files.
//!
//! Each is ten minutes of one to four stages, the last an io sink: cpu and io stages
//! with lognormal service times, sometimes a per-MiB cost, a fan-out or filter, a
//! size change or transient errors; sinks with contention, sometimes batching; a
//! machine of 2 to 8 cores; sometimes an operator's budget, an idle timeout, giants;
//! half of them with a stage slowing down or speeding up mid-run, a quarter with the
//! source's rate dropping. Then, for example:
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

/// The scenario file drawn from `number`.
fn scenario(number: u64) -> String {
    let mut d = Draw(number.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut f = String::new();
    let cores = d.pick(&[2, 4, 8]);
    let memory_gib = d.pick(&[2u64, 4, 8]);
    let _ = writeln!(
        f,
        "name = \"gen-{number}\"\nduration = \"10m\"\nseed = {number}"
    );
    let _ = writeln!(
        f,
        "\n[machine]\ncores = {cores}\nmemory = \"{memory_gib}GiB\""
    );
    if d.chance(0.5) {
        let share = d.pick(&[8u64, 4, 2]);
        let _ = writeln!(
            f,
            "\n[runtime]\nmemory_budget = \"{}MiB\"",
            memory_gib * 1024 / share
        );
    }
    let rate = d.pick(&[2000u64, 5000, 10000, 50000]);
    let median_kib = d.pick(&[1u64, 4, 16, 64]);
    let p99_kib = median_kib * d.pick(&[4u64, 16, 64]);
    let _ = writeln!(f, "\n[source]\nrate = {rate}");
    if d.chance(0.35) {
        let _ = writeln!(
            f,
            "idle_timeout = \"{}s\"\non_timeout = \"{}\"",
            d.pick(&[20, 30, 60]),
            d.pick(&["fail", "reconnect"])
        );
    }
    let _ = writeln!(
        f,
        "size = {{ dist = \"lognormal\", median = \"{median_kib}KiB\", p99 = \"{p99_kib}KiB\" }}"
    );
    if d.chance(0.2) {
        let _ = writeln!(
            f,
            "\n[[source.giant]]\nevery = {}\nsize = \"{}MiB\"",
            d.pick(&[20000, 50000, 100000]),
            d.pick(&[50, 150, 300])
        );
    }
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
        let spread = d.pick(&[3.0, 5.0, 10.0]);
        let _ = writeln!(
            f,
            "\n[[stage]]\nname = \"s{i}\"\nkind = \"{kind}\"\nservice = {{ dist = \"lognormal\", median = {}, p99 = {} }}",
            ms(median_us),
            ms(median_us * spread)
        );
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
            let _ = writeln!(
                f,
                "contention = {}\ncoherency = {}",
                d.pick(&[0.0, 0.01, 0.03, 0.05]),
                d.pick(&[0.0, 0.0005, 0.001, 0.002])
            );
        }
        if d.chance(0.15) {
            let _ = writeln!(f, "error_rate = 0.01");
        }
        if sink && d.chance(0.25) {
            let _ = writeln!(f, "batch = true");
        }
    }
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
    f
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
