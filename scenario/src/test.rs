//! The parser against the shared scenario files, and one test per kind of error.

use std::path::{Path, PathBuf};

use super::{
    load, parse_str, Coordination, Dist, Fleet, OnTimeout, Scenario, ScenarioError, StageKind,
};

const MIB: f64 = (1 << 20) as f64;

/// The project's copies of the shared scenario files, which every version of the
/// parser must read.
fn shared_scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn shared(name: &str) -> Scenario {
    let path = shared_scenarios().join(name);
    load(&path).unwrap_or_else(|err| panic!("{err}"))
}

/// A small valid scenario that the error tests break one key at a time.
const BASE: &str = r#"name = "t"
duration = "10m"

[machine]
cores = 4
memory = "4GiB"

[runtime]
initial_workers = 1

[source]
rate = 1000
size = { dist = "lognormal", median = "8KiB", p99 = "256KiB" }

[[stage]]
name = "parse"
kind = "cpu"
service = { dist = "lognormal", median = "400us", p99 = "4ms" }

[[stage]]
name = "write"
kind = "io"
service = { dist = "lognormal", median = "4ms", p99 = "40ms" }
"#;

/// `BASE` with the first `from` replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in BASE");
    BASE.replacen(from, to, 1)
}

/// `BASE` up to its first `[[stage]]`.
fn without_stages() -> &'static str {
    &BASE[..BASE.find("[[stage]]").expect("BASE has stages")]
}

/// `BASE` with `extra` appended.
fn plus(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

fn parse(text: &str) -> Scenario {
    parse_str(text, "scenarios/x.toml").unwrap_or_else(|err| panic!("{err}"))
}

/// Asserts that `text` fails, with an error on the first line that contains
/// `line_with`, about `key`, saying `message`.
#[track_caller]
fn fails(text: &str, line_with: &str, key: &str, message: &str) {
    let line = text
        .lines()
        .position(|l| l.contains(line_with))
        .unwrap_or_else(|| panic!("no line has {line_with:?}"))
        + 1;
    fails_on(text, line, key, message);
}

/// Asserts that `text` fails with an error on `line` about `key`, saying `message`.
#[track_caller]
fn fails_on(text: &str, line: usize, key: &str, message: &str) {
    let err = parse_str(text, "scenarios/x.toml").expect_err("should fail");
    assert_eq!(
        err.to_string(),
        format!("scenarios/x.toml:{line}: key `{key}`: {message}")
    );
    assert_eq!(err.file(), "scenarios/x.toml");
    assert_eq!(err.line(), Some(line));
    assert_eq!(err.key(), Some(key));
}

/// Asserts that `text` fails about `key`, a key missing from the top level.
#[track_caller]
fn fails_at_top(text: &str, key: &str, message: &str) {
    let err = parse_str(text, "scenarios/x.toml").expect_err("should fail");
    assert_eq!(
        err.to_string(),
        format!("scenarios/x.toml: key `{key}`: {message}")
    );
    assert_eq!(err.line(), None);
}

#[test]
fn every_shared_scenario_parses() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared_scenarios())
        .expect("the scenarios/ folder of the repository")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for path in files {
        let scenario = load(&path).unwrap_or_else(|err| panic!("{err}"));
        assert!(!scenario.stages.is_empty(), "{}", path.display());
    }
}

#[test]
fn shapefile_etl_has_two_giants_and_no_budget() {
    let s = shared("shapefile-etl.toml");
    assert_eq!(s.duration_s, 1800.0);
    assert_eq!(s.tick_s, 1.0);
    assert_eq!(s.seed, 3);
    assert_eq!(s.machine.cores, 8);
    assert_eq!(s.machine.memory_bytes, 2 << 30);
    assert_eq!(s.runtime.memory_budget, None);
    assert_eq!(s.runtime.queue_capacity, 64);
    assert_eq!(s.runtime.max_workers, 64);
    assert_eq!(s.source.rate, 3000.0);
    assert_eq!(s.source.total, Some(1_500_000));
    assert_eq!(
        s.source.size,
        Dist::LogNormal {
            median: 40.0 * 1024.0,
            p99: 2.0 * MIB
        }
    );
    assert_eq!(s.source.giants.len(), 2);
    assert_eq!(s.source.giants[0].every, 4000);
    assert_eq!(
        s.source.giants[0].size,
        Dist::Uniform {
            min: 60.0 * MIB,
            max: 120.0 * MIB
        }
    );
    assert_eq!(s.source.giants[1].every, 15000);
    let names: Vec<&str> = s.stages.iter().map(|stage| stage.name.as_str()).collect();
    assert_eq!(names, ["package", "relay"]);
    let (package, relay) = (&s.stages[0], &s.stages[1]);
    assert_eq!(package.kind, StageKind::Cpu);
    assert_eq!(package.per_mib_s, 0.025);
    assert_eq!(package.size_ratio, 1.6);
    assert_eq!(package.output_ratio, 1.0);
    assert_eq!(relay.kind, StageKind::Io);
    assert_eq!(relay.contention, 0.02);
    assert_eq!(relay.coherency, 0.0008);
    assert_eq!(
        relay.service,
        Dist::LogNormal {
            median: 0.006,
            p99: 0.06
        }
    );
    assert!(s.phases.is_empty());
}

#[test]
fn noisy_neighbor_has_three_phases() {
    let s = shared("noisy-neighbor.toml");
    assert_eq!(s.phases.len(), 3);
    let store = s.stages.iter().position(|stage| stage.name == "store");
    assert_eq!(store, Some(2));
    assert_eq!(s.phases[0].at_s, 300.0);
    assert_eq!(s.phases[0].service_scale, Some((2, 3.0)));
    assert_eq!(s.phases[0].source_rate, None);
    assert_eq!(s.phases[1].at_s, 600.0);
    assert_eq!(s.phases[1].service_scale, Some((2, 1.0)));
    assert_eq!(s.phases[2].at_s, 840.0);
    assert_eq!(s.phases[2].service_scale, None);
    assert_eq!(s.phases[2].source_rate, Some(1200.0));
}

#[test]
fn other_shared_scenarios_spot_checks() {
    let s3 = shared("s3-idle-timeout.toml");
    assert_eq!(s3.source.idle_timeout_s, Some(20.0));
    assert_eq!(s3.source.on_timeout, OnTimeout::Fail);
    assert_eq!(s3.phases[0].stall, Some((1, 120.0)));
    assert_eq!(s3.phases[0].service_scale, None);
    let small = shared("small-records.toml");
    assert!(small.stages[1].batch);
    assert_eq!(small.stages[1].per_mib_s, 0.04);
    assert_eq!(small.runtime.memory_budget, Some(1 << 30));
    let db = shared("saturating-db.toml");
    assert_eq!(db.stages[1].error_rate, 0.001);
    assert_eq!(shared("cpu-bound.toml").machine.cores, 2);
}

#[test]
fn defaults_fill_what_is_left_out() {
    let s = parse(
        r#"
        name = "least"
        duration = "1h"
        [source]
        rate = 1
        size = 100
        [[stage]]
        name = "only"
        kind = "io"
        service = "1ms"
        "#,
    );
    assert_eq!(s.description, "");
    assert_eq!(s.duration_s, 3600.0);
    assert_eq!(s.tick_s, 1.0);
    assert_eq!(s.seed, 0);
    assert_eq!(s.machine.cores, 8);
    assert_eq!(s.machine.memory_bytes, 8 << 30);
    assert_eq!(s.machine.disk_per_mib_s, 0.005);
    let runtime = &s.runtime;
    assert_eq!(runtime.memory_budget, None);
    assert_eq!(runtime.spill, None);
    assert_eq!(
        (
            runtime.initial_workers,
            runtime.max_workers,
            runtime.queue_capacity,
            runtime.batch_size
        ),
        (1, 64, 64, 1)
    );
    assert_eq!(s.source.total, None);
    assert_eq!(s.source.idle_timeout_s, None);
    assert_eq!(s.source.on_timeout, OnTimeout::Fail);
    assert_eq!(s.source.reconnect_s, 10.0);
    assert_eq!(s.source.size, Dist::Fixed { value: 100.0 });
    assert!(s.source.giants.is_empty());
    let stage = &s.stages[0];
    assert_eq!(stage.service, Dist::Fixed { value: 0.001 });
    assert_eq!(
        (stage.per_mib_s, stage.output_ratio, stage.size_ratio),
        (0.0, 1.0, 1.0)
    );
    assert_eq!(
        (stage.contention, stage.coherency, stage.error_rate),
        (0.0, 0.0, 0.0)
    );
    assert!(!stage.batch);
    assert!(s.phases.is_empty());
}

#[test]
fn integers_stand_for_floats_and_plain_byte_counts_for_sizes() {
    let s = parse(&plus(
        "[[phase]]\nat = \"1m\"\nstage = \"write\"\nservice_scale = 4\nsource_rate = 20000\n",
    ));
    assert_eq!(s.phases[0].service_scale, Some((1, 4.0)));
    assert_eq!(s.phases[0].source_rate, Some(20000.0));
    let s = parse(&edit("rate = 1000", "rate = 20000.5"));
    assert_eq!(s.source.rate, 20000.5);
    let s = parse(&edit("memory = \"4GiB\"", "memory = 4096"));
    assert_eq!(s.machine.memory_bytes, 4096);
    let s = parse(&edit(
        "initial_workers = 1",
        "initial_workers = 1\nmemory_budget = \"1.5MiB\"",
    ));
    assert_eq!(s.runtime.memory_budget, Some(3 << 19));
}

#[test]
fn every_distribution_family_inline_or_as_a_table() {
    let s = parse(&plus(
        r#"[[source.giant]]
every = 50000
size = "150MiB"

[[source.giant]]
every = 7
size = { dist = "pareto", min = "1MiB", alpha = 2 }

[[stage]]
name = "sink"
kind = "io"
[stage.service]
dist = "uniform"
min = "1ms"
max = "3ms"

[[stage]]
name = "last"
kind = "io"
service = { dist = "fixed", value = "2s" }
"#,
    ));
    assert_eq!(s.source.giants[0].size, Dist::Fixed { value: 150.0 * MIB });
    assert_eq!(
        s.source.giants[1].size,
        Dist::Pareto {
            min: MIB,
            alpha: 2.0
        }
    );
    assert_eq!(
        s.stages[2].service,
        Dist::Uniform {
            min: 0.001,
            max: 0.003
        }
    );
    assert_eq!(s.stages[3].service, Dist::Fixed { value: 2.0 });
}

#[test]
fn phases_are_sorted_by_time_stably() {
    let s = parse(&plus(
        r#"[[phase]]
at = "8m"
source_rate = 1
[[phase]]
at = "2m"
source_rate = 2
[[phase]]
at = "8m"
source_rate = 3
[[phase]]
at = "0s"
source_rate = 4
"#,
    ));
    let order: Vec<f64> = s.phases.iter().filter_map(|p| p.source_rate).collect();
    assert_eq!(order, [4.0, 2.0, 1.0, 3.0]);
}

#[test]
fn a_fleet_is_read_and_a_file_without_one_is_one_process() {
    assert_eq!(parse(BASE).fleet, None);
    let fleet = parse(&plus("[fleet]\nprocesses = 3")).fleet;
    assert_eq!(
        fleet,
        Some(Fleet {
            processes: 3,
            coordination: Coordination::Leader,
            join_s: 0.0,
        })
    );
    let fleet = parse(&plus("[fleet]\nprocesses = 3\njoin = \"2m\"")).fleet;
    assert_eq!(fleet.map(|f| f.join_s), Some(120.0));
    let fleet = parse(&plus("[fleet]\nprocesses = 2\ncoordination = \"none\"")).fleet;
    assert_eq!(fleet.map(|f| f.coordination), Some(Coordination::None));
}

#[test]
fn a_fleet_needs_two_processes_and_a_known_coordination() {
    let text = plus("[fleet]\nprocesses = 1");
    let err = parse_str(&text, "scenarios/x.toml").expect_err("one process is no fleet");
    assert_eq!(err.key(), Some("fleet.processes"), "{err}");
    let text = plus("[fleet]\nprocesses = 3\ncoordination = \"vote\"");
    let err = parse_str(&text, "scenarios/x.toml").expect_err("unknown coordination");
    assert_eq!(err.key(), Some("fleet.coordination"), "{err}");
    let text = plus("[fleet]\ncoordination = \"none\"");
    let err = parse_str(&text, "scenarios/x.toml").expect_err("processes is required");
    assert_eq!(err.key(), Some("fleet.processes"), "{err}");
}

#[test]
fn reconnect_and_finite_input() {
    let s = parse(&edit(
        "rate = 1000",
        r#"rate = 1000
total = 5
idle_timeout = "30s"
on_timeout = "reconnect"
reconnect = "1.5s""#,
    ));
    assert_eq!(s.source.total, Some(5));
    assert_eq!(s.source.idle_timeout_s, Some(30.0));
    assert_eq!(s.source.on_timeout, OnTimeout::Reconnect);
    assert_eq!(s.source.reconnect_s, 1.5);
}

#[test]
fn a_spill_and_the_disk_cost_are_read() {
    let s = parse(
        &edit(
            "memory = \"4GiB\"",
            "memory = \"4GiB\"\ndisk_per_mib = \"2ms\"",
        )
        .replacen(
            "initial_workers = 1",
            "initial_workers = 1\nspill = \"10GiB\"",
            1,
        ),
    );
    assert_eq!(s.runtime.spill, Some(10 << 30));
    assert_eq!(s.machine.disk_per_mib_s, 0.002);
    fails(
        &edit("initial_workers = 1", "initial_workers = 1\nspill = \"0B\""),
        "spill",
        "runtime.spill",
        "must be greater than 0, got \"0B\"",
    );
    fails(
        &edit("memory = \"4GiB\"", "memory = \"4GiB\"\ndisk_per_mib = 5"),
        "disk_per_mib",
        "machine.disk_per_mib",
        "expected a duration with a unit (like \"250us\", \"1.5s\" or \"10m\"), got 5: \
         a plain number is not a duration",
    );
}

#[test]
fn unknown_keys_everywhere() {
    fails(
        &edit("name = \"t\"", "name = \"t\"\nnmae = \"u\""),
        "nmae",
        "nmae",
        "unknown key; the keys here are name, description, duration, tick, seed, machine, \
         runtime, source, stage, phase, fleet",
    );
    fails(
        &edit("cores = 4", "cores = 4\nthreads = 4"),
        "threads",
        "machine.threads",
        "unknown key; the keys here are cores, memory, disk_per_mib",
    );
    fails(
        &edit("initial_workers = 1", "workers = 1"),
        "workers = 1",
        "runtime.workers",
        "unknown key; the keys here are memory_budget, spill, initial_workers, \
         max_workers, queue_capacity, batch_size",
    );
    fails(
        &edit("rate = 1000", "rate = 1000\nburst = 5"),
        "burst",
        "source.burst",
        "unknown key; the keys here are rate, total, idle_timeout, on_timeout, reconnect, \
         size, giant",
    );
    fails(
        &plus("[[source.giant]]\nevery = 5\nsize = 1\nodds = 3\n"),
        "odds",
        "source.giant[0].odds",
        "unknown key; the keys here are every, size",
    );
    fails(
        &edit("kind = \"io\"", "kind = \"io\"\nretries = 3"),
        "retries",
        "stage[1].retries",
        "unknown key; the keys here are name, kind, service, per_mib, output_ratio, \
         size_ratio, contention, coherency, error_rate, batch",
    );
    fails(
        &plus("[[phase]]\nat = \"1m\"\nsource_rate = 5\nuntil = \"2m\"\n"),
        "until",
        "phase[0].until",
        "unknown key; the keys here are at, stage, service_scale, source_rate, stall",
    );
    fails(
        &edit("p99 = \"4ms\"", "p99 = \"4ms\", p95 = \"3ms\""),
        "p95",
        "stage[0].service.p95",
        "unknown key; the keys here are dist, median, p99",
    );
    fails(
        &plus(
            r#"[[stage]]
name = "x"
kind = "io"
[stage.service]
dist = "fixed"
value = "1s"
min = "1s"
"#,
        ),
        "min = \"1s\"",
        "stage[2].service.min",
        "unknown key; the keys here are dist, value",
    );
}

#[test]
fn missing_required_keys() {
    fails_at_top(&edit("name = \"t\"\n", ""), "name", "missing required key");
    fails_at_top(
        &edit("duration = \"10m\"\n", ""),
        "duration",
        "missing required key",
    );
    let source = BASE
        .find("[source]")
        .zip(BASE.find("[[stage]]"))
        .expect("BASE has a source and stages");
    let no_source = format!("{}{}", &BASE[..source.0], &BASE[source.1..]);
    fails_at_top(&no_source, "source", "missing required key");
    fails(
        &edit("rate = 1000\n", ""),
        "[source]",
        "source.rate",
        "missing required key",
    );
    fails(
        &edit("size = { dist", "# size = { dist"),
        "[source]",
        "source.size",
        "missing required key",
    );
    fails_at_top(
        without_stages(),
        "stage",
        "missing required key: a scenario needs at least one [[stage]]",
    );
    fails(
        &format!("stage = []\n{}", without_stages()),
        "stage = []",
        "stage",
        "a scenario needs at least one [[stage]]",
    );
    // A key missing from a table is reported on the line of the table's header: the
    // second [[stage]] is on line 20.
    fails_on(
        &edit("name = \"write\"\n", ""),
        20,
        "stage[1].name",
        "missing required key",
    );
    fails_on(
        &edit("kind = \"io\"\n", ""),
        20,
        "stage[1].kind",
        "missing required key",
    );
    fails_on(
        &edit(
            "service = { dist = \"lognormal\", median = \"4ms\", p99 = \"40ms\" }\n",
            "",
        ),
        20,
        "stage[1].service",
        "missing required key",
    );
    fails(
        &plus("[[phase]]\nsource_rate = 5\n"),
        "[[phase]]",
        "phase[0].at",
        "missing required key",
    );
    fails(
        &edit(", p99 = \"40ms\"", ""),
        "median = \"4ms\"",
        "stage[1].service.p99",
        "missing required key",
    );
    fails(
        &edit("dist = \"lognormal\", median = \"4ms\"", "median = \"4ms\""),
        "median = \"4ms\"",
        "stage[1].service.dist",
        "missing required key",
    );
}

#[test]
fn wrong_types() {
    fails(
        &edit("name = \"t\"", "name = 5"),
        "name = 5",
        "name",
        "expected a string, got 5",
    );
    fails(
        &edit("rate = 1000", "rate = \"fast\""),
        "rate =",
        "source.rate",
        "expected a number, got \"fast\"",
    );
    fails(
        &edit("cores = 4", "cores = 4.0"),
        "cores",
        "machine.cores",
        "expected a whole number, got 4.0",
    );
    fails(
        &edit("kind = \"io\"", "kind = \"io\"\nbatch = \"yes\""),
        "batch",
        "stage[1].batch",
        "expected true or false, got \"yes\"",
    );
    fails(
        &edit("[machine]\ncores = 4\nmemory = \"4GiB\"\n", "machine = 8\n"),
        "machine = 8",
        "machine",
        "expected a table, got 8",
    );
    fails(
        &format!("{}[stage]\nname = \"x\"\n", without_stages()),
        "[stage]",
        "stage",
        "expected an array of tables ([[stage]]), got a table",
    );
    fails(
        &edit("median = \"8KiB\"", "median = [1, 2]"),
        "median = [1, 2]",
        "source.size.median",
        "expected a size (like \"512B\", \"8KiB\" or \"1.5MiB\") or a byte count, got an array",
    );
    fails(
        &edit("rate = 1000", "rate = nan"),
        "rate =",
        "source.rate",
        "expected a finite number, got nan",
    );
}

#[test]
fn bad_units() {
    fails(
        &edit("duration = \"10m\"", "duration = \"10 min\""),
        "duration",
        "duration",
        "expected a duration: a number and one of the units us, ms, s, m, h \
         (like \"250us\", \"1.5s\" or \"10m\"), got \"10 min\"",
    );
    fails(
        &edit("duration = \"10m\"", "duration = 600"),
        "duration",
        "duration",
        "expected a duration with a unit (like \"250us\", \"1.5s\" or \"10m\"), got 600: \
         a plain number is not a duration",
    );
    fails(
        &edit("median = \"8KiB\"", "median = \"8KB\""),
        "8KB",
        "source.size.median",
        "expected a size: a byte count or a number and one of the units B, KiB, MiB, GiB, \
         TiB (like \"512B\" or \"1.5MiB\"), got \"8KB\"",
    );
    fails(
        &edit("median = \"400us\"", "median = \"400\""),
        "median = \"400\"",
        "stage[0].service.median",
        "expected a duration: a number and one of the units us, ms, s, m, h \
         (like \"250us\", \"1.5s\" or \"10m\"), got \"400\"",
    );
}

#[test]
fn durations_longer_than_a_std_duration_are_refused() {
    // Found by the fuzzer: `brigade demo` panicked converting such a tick, duration or
    // idle timeout into a std Duration.
    fails(
        &edit(
            "duration = \"10m\"",
            "duration = \"10m\"\ntick = \"99999999999999999999999h\"",
        ),
        "tick",
        "tick",
        "too large, got \"99999999999999999999999h\"",
    );
    fails(
        &edit(
            "rate = 1000",
            "rate = 1000\nidle_timeout = \"18446744073709551616s\"",
        ),
        "idle_timeout",
        "source.idle_timeout",
        "too large, got \"18446744073709551616s\"",
    );
}

#[test]
fn rates_must_be_positive() {
    fails(
        &edit("rate = 1000", "rate = 0"),
        "rate = 0",
        "source.rate",
        "must be greater than 0, got 0",
    );
    fails(
        &edit("rate = 1000", "rate = -5.5"),
        "rate = -5.5",
        "source.rate",
        "must be greater than 0, got -5.5",
    );
    fails(
        &plus("[[phase]]\nat = \"1m\"\nsource_rate = 0\n"),
        "source_rate",
        "phase[0].source_rate",
        "must be greater than 0, got 0",
    );
}

#[test]
fn sizes_and_durations_must_not_be_negative() {
    fails(
        &edit("memory = \"4GiB\"", "memory = -1"),
        "memory",
        "machine.memory",
        "must not be negative, got -1",
    );
    fails(
        &edit("p99 = \"256KiB\"", "p99 = \"-256KiB\""),
        "-256KiB",
        "source.size.p99",
        "must not be negative, got \"-256KiB\"",
    );
    fails(
        &edit("kind = \"cpu\"", "kind = \"cpu\"\nper_mib = \"-20ms\""),
        "per_mib",
        "stage[0].per_mib",
        "must not be negative, got \"-20ms\"",
    );
    fails(
        &edit("duration = \"10m\"", "duration = \"0s\""),
        "duration",
        "duration",
        "must be longer than 0, got \"0s\"",
    );
}

#[test]
fn error_rate_is_a_probability() {
    for bad in ["1.5", "-0.1"] {
        fails(
            &edit(
                "kind = \"io\"",
                &format!("kind = \"io\"\nerror_rate = {bad}"),
            ),
            "error_rate",
            "stage[1].error_rate",
            &format!("must be between 0 and 1, got {bad}"),
        );
    }
    let edge = parse(&edit("kind = \"io\"", "kind = \"io\"\nerror_rate = 1"));
    assert_eq!(edge.stages[1].error_rate, 1.0);
}

#[test]
fn ratios_and_usl_coefficients_must_not_be_negative() {
    for key in ["output_ratio", "size_ratio", "contention", "coherency"] {
        fails(
            &edit("kind = \"cpu\"", &format!("kind = \"cpu\"\n{key} = -0.5")),
            &format!("{key} ="),
            &format!("stage[0].{key}"),
            "must not be negative, got -0.5",
        );
    }
}

#[test]
fn counts_must_be_at_least_one() {
    fails(
        &edit("cores = 4", "cores = 0"),
        "cores",
        "machine.cores",
        "must be at least 1, got 0",
    );
    for key in [
        "initial_workers",
        "max_workers",
        "queue_capacity",
        "batch_size",
    ] {
        fails(
            &edit("initial_workers = 1", &format!("{key} = 0")),
            &format!("{key} = 0"),
            &format!("runtime.{key}"),
            "must be at least 1, got 0",
        );
    }
    fails(
        &edit("name = \"t\"", "name = \"t\"\nseed = -1"),
        "seed",
        "seed",
        "must not be negative, got -1",
    );
}

#[test]
fn max_workers_must_cover_initial_workers() {
    fails(
        &edit(
            "initial_workers = 1",
            "initial_workers = 8\nmax_workers = 4",
        ),
        "initial_workers",
        "runtime.initial_workers",
        "must be at most max_workers (4), got 8",
    );
    fails(
        &edit("initial_workers = 1", "initial_workers = 100"),
        "initial_workers",
        "runtime.initial_workers",
        "must be at most max_workers (by default 64), got 100",
    );
    let equal = parse(&edit(
        "initial_workers = 1",
        "initial_workers = 4\nmax_workers = 4",
    ));
    assert_eq!(equal.runtime.max_workers, 4);
}

#[test]
fn distribution_parameters_in_range() {
    fails(
        &edit("p99 = \"4ms\"", "p99 = \"300us\""),
        "300us",
        "stage[0].service.p99",
        "must be at least the median (\"400us\"), got \"300us\"",
    );
    fails(
        &edit("median = \"400us\"", "median = \"0s\""),
        "median = \"0s\"",
        "stage[0].service.median",
        "must be greater than 0, got \"0s\"",
    );
    fails(
        &edit(
            "{ dist = \"lognormal\", median = \"4ms\", p99 = \"40ms\" }",
            "{ dist = \"uniform\", min = \"4ms\", max = \"1ms\" }",
        ),
        "uniform",
        "stage[1].service.max",
        "must be at least min (\"4ms\"), got \"1ms\"",
    );
    for bad in ["0", "-1.5"] {
        fails(
            &edit(
                "{ dist = \"lognormal\", median = \"4ms\", p99 = \"40ms\" }",
                &format!("{{ dist = \"pareto\", min = \"4ms\", alpha = {bad} }}"),
            ),
            "pareto",
            "stage[1].service.alpha",
            &format!("must be greater than 0, got {bad}"),
        );
    }
    fails(
        &edit(
            "dist = \"lognormal\", median = \"8KiB\"",
            "dist = \"normal\", median = \"8KiB\"",
        ),
        "normal",
        "source.size.dist",
        "expected \"fixed\", \"uniform\", \"lognormal\" or \"pareto\", got \"normal\"",
    );
}

#[test]
fn stage_names_are_unique() {
    fails_on(
        &edit("name = \"write\"", "name = \"parse\""),
        21,
        "stage[1].name",
        "duplicate stage name \"parse\": stage[0] has it too",
    );
}

#[test]
fn stage_kind_is_cpu_or_io() {
    fails(
        &edit("kind = \"io\"", "kind = \"gpu\""),
        "gpu",
        "stage[1].kind",
        "expected \"cpu\" or \"io\", got \"gpu\"",
    );
}

#[test]
fn only_the_last_stage_may_batch() {
    fails(
        &edit("kind = \"cpu\"", "kind = \"cpu\"\nbatch = true"),
        "batch",
        "stage[0].batch",
        "only the last stage, the sink, may take batches",
    );
    let sink = parse(&edit("kind = \"io\"", "kind = \"io\"\nbatch = true"));
    assert!(sink.stages[1].batch);
}

#[test]
fn a_phase_names_a_known_stage() {
    fails(
        &plus("[[phase]]\nat = \"1m\"\nstage = \"db\"\nservice_scale = 2\n"),
        "\"db\"",
        "phase[0].stage",
        "no stage named \"db\"; the stages are \"parse\", \"write\"",
    );
}

#[test]
fn a_phase_scales_a_stage_with_both_keys() {
    let text = plus(
        "[[phase]]\nat = \"1m\"\nsource_rate = 5\n[[phase]]\nat = \"2m\"\nstage = \"write\"\n",
    );
    fails_on(
        &text,
        28,
        "phase[1].service_scale",
        "missing: `stage` is set, so the phase needs the `service_scale` or the `stall` to \
         apply to it",
    );
    let text = plus("[[phase]]\nat = \"2m\"\nservice_scale = 2\n");
    fails(
        &text,
        "[[phase]]",
        "phase[0].stage",
        "missing: `service_scale` is set, so the phase needs the `stage` it applies to",
    );
}

#[test]
fn a_phase_changes_something() {
    fails(
        &plus("[[phase]]\nat = \"2m\"\n"),
        "[[phase]]",
        "phase[0]",
        "a phase that changes nothing: give `stage` and `service_scale` or `stall`, or \
         `source_rate`",
    );
}

#[test]
fn a_stall_holds_one_stage_for_a_duration() {
    let sc = parse(&plus(
        "[[phase]]\nat = \"5m\"\nstage = \"write\"\nstall = \"2m\"\n",
    ));
    assert_eq!(sc.phases.len(), 1);
    assert_eq!(sc.phases[0].stall, Some((1, 120.0)));
    assert_eq!(sc.phases[0].service_scale, None);
    fails(
        &plus("[[phase]]\nat = \"5m\"\nstall = \"2m\"\n"),
        "[[phase]]",
        "phase[0].stage",
        "missing: `stall` is set, so the phase needs the `stage` it applies to",
    );
    fails(
        &plus("[[phase]]\nat = \"5m\"\nstage = \"write\"\nstall = \"0s\"\n"),
        "[[phase]]",
        "phase[0]",
        "a stall of no time changes nothing: give it a positive duration",
    );
    fails(
        &plus("[[phase]]\nat = \"5m\"\nstage = \"write\"\nstall = 120\n"),
        "stall = 120",
        "phase[0].stall",
        "expected a duration with a unit (like \"250us\", \"1.5s\" or \"10m\"), got 120: a \
         plain number is not a duration",
    );
}

#[test]
fn on_timeout_is_fail_or_reconnect() {
    fails(
        &edit("rate = 1000", "rate = 1000\non_timeout = \"retry\""),
        "retry",
        "source.on_timeout",
        "expected \"fail\" or \"reconnect\", got \"retry\"",
    );
}

#[test]
fn a_giant_comes_at_least_every_record() {
    fails(
        &plus("[[source.giant]]\nevery = 0\nsize = \"1GiB\"\n"),
        "every",
        "source.giant[0].every",
        "must be at least 1, got 0",
    );
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let err =
        parse_str(&edit("cores = 4", "cores = = 4"), "scenarios/x.toml").expect_err("not TOML");
    assert!(matches!(err, ScenarioError::Syntax { .. }), "{err:?}");
    assert_eq!(err.line(), Some(5));
    assert!(
        err.to_string()
            .starts_with("scenarios/x.toml:5: not valid TOML: "),
        "{err}"
    );
    assert_eq!(err.key(), None);
}

#[test]
fn a_missing_file_is_named() {
    let err = load(Path::new("scenarios/no-such-file.toml")).expect_err("no file");
    assert!(matches!(err, ScenarioError::Io { .. }), "{err:?}");
    assert_eq!(err.file(), "scenarios/no-such-file.toml");
    assert!(
        err.to_string()
            .starts_with("scenarios/no-such-file.toml: cannot read: "),
        "{err}"
    );
}

#[test]
fn other_values_that_cannot_work() {
    fails(
        &edit("initial_workers = 1", "memory_budget = 0"),
        "memory_budget",
        "runtime.memory_budget",
        "must be greater than 0, got 0",
    );
    fails(
        &edit("rate = 1000", "rate = 1000\ntotal = 0"),
        "total",
        "source.total",
        "must be at least 1, got 0",
    );
    fails(
        &edit("name = \"write\"", "name = \" \""),
        "name = \" \"",
        "stage[1].name",
        "must not be blank, got \" \"",
    );
    fails(
        &plus("[[source.giant]]\nevery = 9\nsize = { dist = \"pareto\", min = 0, alpha = 1 }\n"),
        "pareto",
        "source.giant[0].size.min",
        "must be greater than 0, got 0",
    );
}

#[test]
fn stages_as_an_array_of_inline_tables() {
    let text = format!(
        "stage = [{{ name = \"a\", kind = \"io\", service = \"1ms\" }}, {{ name = \"b\", \
         kind = \"cpu\", service = \"2ms\" }}]\n{}",
        without_stages()
    );
    let s = parse(&text);
    assert_eq!(s.stages.len(), 2);
    assert_eq!(s.stages[1].kind, StageKind::Cpu);
    fails(
        &format!("stage = [\"a\"]\n{}", without_stages()),
        "stage = [",
        "stage[0]",
        "expected a table, got \"a\"",
    );
}
