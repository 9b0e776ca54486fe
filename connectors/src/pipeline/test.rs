//! Pipeline files: a valid file per connector, and every kind of error with its
//! file:line:column and key.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::interpolate::Lookup;
use super::read::read;
use super::*;
use crate::file::{FileOrder, Format};
use crate::units::Size;

fn env(name: &str) -> Lookup {
    match name {
        "DB_DIR" => Lookup::Set("/var/db".to_owned()),
        "TABLE" => Lookup::Set("orders".to_owned()),
        "RAW" => Lookup::NotUnicode,
        _ => Lookup::Unset,
    }
}

fn spec(text: &str) -> PipelineSpec {
    match read(text, Path::new("conf/orders.toml"), &env) {
        Ok(spec) => spec,
        Err(errors) => panic!("{errors}"),
    }
}

/// Every error, one a line.
fn errors(text: &str) -> Vec<String> {
    match read(text, Path::new("p.toml"), &env) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(Errors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The only error.
fn error(text: &str) -> String {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

const MINIMAL: &str = r#"
[source]
type = "stdin"
format = "jsonl"

[sink]
type = "stdout"
"#;

const FULL: &str = r#"
name = "orders"

[runtime]
memory_budget = "256MiB"
tick = "100ms"
policy = "static:1,1,2,4"
serial_threshold = 8388608
max_workers = 8
queue_capacity = 32
retry = { attempts = "forever", initial_backoff = "5ms", max_backoff = "1s" }
spill = "10GiB"
spill_dir = "spill"

[source]
type = "file"
path = "data/*.csv.gz"
format = "csv"
order = "modified"
max_line = "1MiB"

[[stage]]
name = "enrich"
type = "exec"
command = ["python3", "enrich.py", "--db=${DB_DIR}"]
timeout = "2s"
env = { MODE = "fast" }
workers = { min = 2, max = 6, initial = 3 }
queue_capacity = 16
rate_limit = 250.5

[[stage]]
name = "tidy"
type = "fields"
rename = { id = "order_id" }
drop = ["secret"]
set = { source = "shop", version = 2 }
pin = 4

[sink]
type = "sqlite"
path = "out.db"
table = "${TABLE}"
columns = ["order_id", "total"]
key = ["order_id"]
busy_timeout = "3s"
batch_size = 100
concurrency_limit = 2
workers = { max = 3 }

[dead_letter]
path = "dead.jsonl"
max_size = "1GiB"

[checkpoint]
dir = "state"
interval = "250ms"
"#;

#[test]
fn a_full_file_reads_every_key() {
    let spec = spec(FULL);
    assert_eq!(spec.name, "orders");
    assert_eq!(spec.path, Path::new("conf/orders.toml"));
    assert_eq!(spec.base, Path::new("conf"));

    let runtime = &spec.runtime;
    assert_eq!(runtime.memory_budget, Some(256 << 20));
    assert_eq!(runtime.tick, Some(Duration::from_millis(100)));
    assert_eq!(runtime.policy, "static:1,1,2,4");
    assert_eq!(runtime.serial_threshold, Some(8 << 20));
    assert_eq!(runtime.max_workers, Some(8));
    assert_eq!(runtime.queue_capacity, Some(32));
    assert_eq!(runtime.retry.attempts, Attempts::Forever);
    assert_eq!(runtime.retry.policy().attempts, u32::MAX);
    assert_eq!(runtime.retry.initial_backoff, Duration::from_millis(5));
    assert_eq!(runtime.retry.max_backoff, Duration::from_secs(1));
    assert_eq!(runtime.spill, Some(10 << 30));
    assert_eq!(runtime.spill_dir, Some("spill".into()));

    let SourceConfig::File(source) = &spec.source.config else {
        panic!("{:?}", spec.source)
    };
    assert_eq!(source.path, "data/*.csv.gz");
    assert_eq!(source.format, Format::Csv);
    assert_eq!(source.order, FileOrder::Modified);
    assert_eq!(source.max_line, Some(Size(1 << 20)));

    let [enrich, tidy] = &spec.stages[..] else {
        panic!("{:?}", spec.stages)
    };
    assert_eq!(enrich.name, "enrich");
    let StageKind::Exec(exec) = &enrich.kind else {
        panic!("{enrich:?}")
    };
    assert_eq!(exec.command, ["python3", "enrich.py", "--db=/var/db"]);
    assert_eq!(
        exec.timeout.map(|span| span.0),
        Some(Duration::from_secs(2))
    );
    assert_eq!(exec.env["MODE"], "fast");
    assert_eq!(
        enrich.settings,
        StageSettings {
            min: 2,
            max: 6,
            initial: 3,
            pin: None,
            queue_capacity: Some(16),
            concurrency_limit: None,
            rate_limit: Some(250.5),
        }
    );
    let StageKind::Fields(fields) = &tidy.kind else {
        panic!("{tidy:?}")
    };
    let mut record = serde_json::json!({"id": 1, "secret": "s"});
    fields.apply(&mut record).unwrap();
    assert_eq!(
        record,
        serde_json::json!({"order_id": 1, "source": "shop", "version": 2})
    );
    // The runtime's max_workers is the default maximum; the pin is where it starts.
    assert_eq!((tidy.settings.min, tidy.settings.max), (1, 8));
    assert_eq!((tidy.settings.pin, tidy.settings.initial), (Some(4), 4));

    let SinkConfig::Sqlite(sqlite) = &spec.sink.config else {
        panic!("{:?}", spec.sink)
    };
    assert_eq!(spec.sink.name, "sink");
    assert_eq!(sqlite.path, Path::new("out.db"));
    assert_eq!(sqlite.table, "orders");
    assert_eq!(sqlite.columns, ["order_id", "total"]);
    assert_eq!(sqlite.key, ["order_id"]);
    assert_eq!(
        sqlite.busy_timeout.map(|span| span.0),
        Some(Duration::from_secs(3))
    );
    assert_eq!(spec.sink.batch_size, Some(100));
    assert_eq!(spec.sink.settings.concurrency_limit, Some(2));
    assert_eq!((spec.sink.settings.min, spec.sink.settings.max), (1, 3));

    let dead_letter = spec.dead_letter.as_ref().unwrap();
    assert_eq!(dead_letter.path, Path::new("dead.jsonl"));
    assert_eq!(dead_letter.max_size, Some(Size(1 << 30)));
    let checkpoint = spec.checkpoint.as_ref().unwrap();
    assert_eq!(checkpoint.dir, Path::new("state"));
    assert_eq!(checkpoint.interval, Duration::from_millis(250));
}

#[test]
fn a_minimal_file_takes_the_defaults() {
    let spec = spec(MINIMAL);
    assert_eq!(spec.name, "orders", "the file's stem");
    assert_eq!(spec.runtime, RuntimeSettings::default());
    assert_eq!(spec.runtime.policy, "adaptive");
    assert_eq!(
        spec.runtime.retry.policy(),
        brigade_runtime::RetryPolicy::default()
    );
    let SourceConfig::Stdin(stdin) = &spec.source.config else {
        panic!("{:?}", spec.source)
    };
    assert_eq!(stdin.format, Format::Jsonl);
    assert!(spec.stages.is_empty());
    assert_eq!(spec.sink.config.type_name(), "stdout");
    assert_eq!(
        spec.sink.settings,
        StageSettings {
            min: 1,
            max: 64,
            initial: 1,
            pin: None,
            queue_capacity: None,
            concurrency_limit: None,
            rate_limit: None,
        }
    );
    assert_eq!((spec.dead_letter, spec.checkpoint), (None, None));
}

#[test]
fn a_file_sink_and_a_file_source_in_name_order() {
    let spec = spec(
        r#"
[source]
type = "file"
path = "in/*.log"
format = "lines"
[sink]
type = "file"
path = "out/${TABLE}.jsonl"
"#,
    );
    let SourceConfig::File(source) = &spec.source.config else {
        panic!()
    };
    assert_eq!((source.order, source.max_line), (FileOrder::Name, None));
    let SinkConfig::File(sink) = &spec.sink.config else {
        panic!()
    };
    assert_eq!(sink.path, Path::new("out/orders.jsonl"));
}

#[test]
fn an_unknown_key_names_the_connector_and_the_keys_it_takes() {
    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"o\"\ntabel = \"x\"",
    );
    assert_eq!(
        error(&text),
        "p.toml:9:1: sink: unknown key `tabel` for a `file` sink; expected one of: path"
    );
    // A key of another connector: the sqlite sink's `table` on a file sink.
    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"o\"\ntable = \"x\"",
    );
    assert_eq!(
        error(&text),
        "p.toml:9:1: sink: unknown key `table` for a `file` sink; expected one of: path"
    );
    let text = MINIMAL.replace("type = \"stdout\"", "type = \"stdout\"\npath = \"o\"");
    assert_eq!(
        error(&text),
        "p.toml:8:1: sink: unknown key `path` for a `stdout` sink; it takes no settings"
    );
    // A misspelt runtime key is suggested.
    let text = MINIMAL.replace("type = \"stdout\"", "type = \"stdout\"\nworker = 2");
    assert_eq!(
        error(&text),
        "p.toml:8:1: sink: unknown key `worker` for a `stdout` sink; it takes no settings \
         (did you mean `workers`?)"
    );
    let text = format!("{MINIMAL}[[stage]]\nname = \"a\"\ntype = \"fields\"\nremove = []\n");
    let message = error(&text);
    assert!(
        message.starts_with("p.toml:11:1: stage.a: unknown key `remove` for a `fields` stage; expected one of: set, rename, drop"),
        "{message}"
    );
}

#[test]
fn unknown_keys_of_the_pipelines_own_tables_are_named() {
    assert_eq!(
        error(&format!("nmae = \"x\"\n{MINIMAL}")),
        "p.toml:1:1: top level: unknown key `nmae`; expected one of: name, runtime, source, \
         stage, sink, dead_letter, checkpoint"
    );
    let message = error(&format!("[runtime]\nticks = \"1s\"\n{MINIMAL}"));
    assert!(
        message.starts_with(
            "p.toml:2:1: runtime: unknown key `ticks`; expected one of: memory_budget, tick,"
        ),
        "{message}"
    );
    let message = error(&format!("{MINIMAL}workers = {{ least = 1 }}\n"));
    assert_eq!(
        message,
        "p.toml:8:13: sink.workers: unknown key `least`; expected one of: min, max, initial"
    );
}

#[test]
fn missing_sections_and_keys_are_named() {
    assert_eq!(
        error("[source]\ntype = \"stdin\"\nformat = \"lines\"\n"),
        "p.toml:1:1: top level: missing the [sink] section"
    );
    let message =
        error(&MINIMAL.replace("type = \"stdout\"", "type = \"sqlite\"\npath = \"x.db\""));
    assert_eq!(
        message,
        "p.toml:6:1: sink: missing key `table` for a `sqlite` sink"
    );
    let message = error(&MINIMAL.replace("format = \"jsonl\"\n", ""));
    assert_eq!(
        message,
        "p.toml:2:1: source: missing key `format` for a `stdin` source"
    );
    let message = error(&MINIMAL.replace("type = \"stdout\"", "path = \"o\""));
    assert_eq!(
        message,
        "p.toml:6:1: sink: missing key `type`; expected one of: file, stdout, sqlite, http, \
         postgres, redis_stream, redis_hash"
    );
}

#[test]
fn an_unknown_type_lists_the_types_there_are() {
    assert_eq!(
        error(&MINIMAL.replace("\"stdin\"", "\"kafka\"")),
        "p.toml:3:8: source.type: unknown source type `kafka`; expected one of: file, stdin, postgres, redis"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}[[stage]]\nname = \"a\"\ntype = \"python\"\n"
        )),
        "p.toml:10:8: stage.a.type: unknown stage type `python`; expected one of: exec, fields"
    );
    assert_eq!(
        error(&MINIMAL.replace("\"stdout\"", "\"mysql\"")),
        "p.toml:7:8: sink.type: unknown sink type `mysql`; expected one of: file, stdout, \
         sqlite, http, postgres, redis_stream, redis_hash"
    );
}

#[test]
fn a_bad_unit_says_the_forms_expected() {
    let message = error(&format!("[runtime]\ntick = \"100 ms\"\n{MINIMAL}"));
    assert!(
        message.starts_with("p.toml:2:8: runtime.tick: expected a duration: a number and one of the units us, ms, s, m, h"),
        "{message}"
    );
    assert!(message.ends_with("got \"100 ms\""), "{message}");
    let message = error(&format!("[runtime]\nmemory_budget = \"2GB\"\n{MINIMAL}"));
    assert!(
        message.starts_with("p.toml:2:17: runtime.memory_budget: expected a size: a byte count or a number and one of the units B, KiB, MiB, GiB, TiB"),
        "{message}"
    );
    let message = error(&format!("[runtime]\ntick = 5\n{MINIMAL}"));
    assert_eq!(
        message,
        "p.toml:2:8: runtime.tick: expected a duration with its unit, like \"250ms\" or \"2s\", \
         got 5"
    );
    // A connector's unit, read by its own type.
    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"sqlite\"\npath = \"x.db\"\ntable = \"t\"\ncolumns = []\nbusy_timeout = \"5\"",
    );
    let message = error(&text);
    assert!(
        message.starts_with("p.toml:11:16: sink.busy_timeout: expected a duration:"),
        "{message}"
    );
}

#[test]
fn a_value_of_the_wrong_type_or_range_is_named() {
    assert_eq!(
        error(&format!("[runtime]\nmax_workers = 0\n{MINIMAL}")),
        "p.toml:2:15: runtime.max_workers: expected a whole number, at least 1, got 0"
    );
    assert_eq!(
        error(&format!("[runtime]\nqueue_capacity = \"64\"\n{MINIMAL}")),
        "p.toml:2:18: runtime.queue_capacity: expected a whole number, at least 1, got \"64\""
    );
    assert_eq!(
        error(&format!("{MINIMAL}rate_limit = -1\n")),
        "p.toml:8:14: sink.rate_limit: expected a number above zero, got -1"
    );
    assert_eq!(
        error(&MINIMAL.replace("\"jsonl\"", "\"xml\"")),
        "p.toml:4:10: source.format: unknown value `xml`, expected one of `lines`, `jsonl`, \
         `csv`"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}[[stage]]\nname = \"x\"\ntype = \"exec\"\ncommand = \"a b\"\n"
        )),
        "p.toml:11:11: stage.x.command: invalid type: string \"a b\", expected a sequence"
    );
    assert_eq!(
        error(&format!(
            "source = 3\n{}",
            &MINIMAL[MINIMAL.find("[sink]").unwrap()..]
        )),
        "p.toml:1:10: source: expected a table, got 3"
    );
}

#[test]
fn workers_must_be_in_order_and_a_pin_within_them() {
    assert_eq!(
        error(&format!("{MINIMAL}workers = {{ min = 4, max = 2 }}\n")),
        "p.toml:8:11: sink.workers: min (4) is above max (2); expected min ≤ max"
    );
    assert_eq!(
        error(&format!(
            "{MINIMAL}workers = {{ min = 2, max = 4, initial = 5 }}\n"
        )),
        "p.toml:8:11: sink.workers: initial (5) is outside min..=max (2..=4); expected min ≤ \
         initial ≤ max"
    );
    assert_eq!(
        error(&format!("[runtime]\nmax_workers = 3\n{MINIMAL}pin = 4\n")),
        "p.toml:10:7: sink.pin: pin (4) is outside the workers' min..=max (1..=3)"
    );
}

#[test]
fn stage_names_are_required_and_unique() {
    let stage = |name: &str| format!("[[stage]]\nname = \"{name}\"\ntype = \"fields\"\n");
    let text = format!("{MINIMAL}{}{}", stage("a"), stage("a"));
    assert_eq!(
        error(&text),
        "p.toml:12:8: stage.a: the name `a` is already another stage's; expected names \
         unique among the stages and the sink"
    );
    let text = format!("{MINIMAL}{}", stage("sink"));
    assert!(
        error(&text).starts_with("p.toml:9:8: stage.sink: the name `sink` is already the sink's")
    );
    let text = format!("{MINIMAL}[[stage]]\ntype = \"fields\"\n");
    assert_eq!(error(&text), "p.toml:8:1: stage[0]: missing key `name`");
    let text = format!("{MINIMAL}{}", stage(" "));
    assert_eq!(
        error(&text),
        "p.toml:9:8: stage[0].name: expected a name that is not blank, got \" \""
    );
    assert_eq!(
        error(&format!("stage = [1]\n{MINIMAL}")),
        "p.toml:1:10: stage[0]: expected a table, got 1"
    );
}

#[test]
fn a_stage_with_a_wrong_connector_setting_still_has_its_runtime_keys_checked() {
    let text = format!("{MINIMAL}[[stage]]\nname = \"a\"\ntype = \"exec\"\ncommand = 1\npin = 0\n");
    assert_eq!(
        errors(&text),
        [
            "p.toml:11:11: stage.a.command: invalid type: integer `1`, expected a sequence",
            "p.toml:12:7: stage.a.pin: expected a whole number, at least 1, got 0",
        ]
    );
    let text = MINIMAL.replace("\"stdout\"", "\"nowhere\"\nbatch_size = 0");
    assert_eq!(
        errors(&text),
        [
            "p.toml:7:8: sink.type: unknown sink type `nowhere`; expected one of: file, stdout, \
             sqlite, http, postgres, redis_stream, redis_hash",
            "p.toml:8:14: sink.batch_size: expected a whole number, at least 1, got 0",
        ]
    );
}

#[test]
fn a_stage_name_that_is_not_a_bare_key_is_quoted_in_messages() {
    let text = format!(
        "{MINIMAL}[[stage]]\nname = \"clean up\"\ntype = \"fields\"\nset = {{ when = \"${{WHEN}}\" }}\nrate_limit = 0\n"
    );
    assert_eq!(
        errors(&text),
        [
            "p.toml:11:16: stage.\"clean up\".set.when: the environment variable `WHEN` is \
             not set",
            "p.toml:12:14: stage.\"clean up\".rate_limit: expected a number above zero, got 0",
        ]
    );
}

#[test]
fn a_static_policy_gives_one_count_per_stage_decode_and_sink_included() {
    let stage = "[[stage]]\nname = \"a\"\ntype = \"fields\"\n";
    let text = format!("[runtime]\npolicy = \"static:1,2\"\n{MINIMAL}{stage}");
    assert_eq!(
        error(&text),
        "p.toml:2:10: runtime.policy: `static:1,2` gives 2 worker counts, and the pipeline \
         has 3 stages (decode, a, sink); expected one count per stage, in order"
    );
    spec(&format!(
        "[runtime]\npolicy = \"static:1,2,3\"\n{MINIMAL}{stage}"
    ));
    spec(&format!(
        "[runtime]\npolicy = \"static:3\"\n{MINIMAL}{stage}"
    ));
    let message = error(&format!("[runtime]\npolicy = \"fastest\"\n{MINIMAL}"));
    assert!(
        message.starts_with(
            "p.toml:2:10: runtime.policy: unknown policy `fastest`: the policies are adaptive,"
        ),
        "{message}"
    );
}

#[test]
fn retry_takes_forever_or_a_count_and_ordered_backoffs() {
    let retry = |value: &str| format!("[runtime]\nretry = {value}\n{MINIMAL}");
    let spec = spec(&retry("{ attempts = 3 }"));
    assert_eq!(spec.runtime.retry.attempts, Attempts::Times(3));
    assert_eq!(
        error(&retry("{ attempts = 0 }")),
        "p.toml:2:22: runtime.retry.attempts: expected a whole number of calls, at least 1, \
         or \"forever\", got 0"
    );
    assert_eq!(
        error(&retry("{ attempts = \"always\" }")),
        "p.toml:2:22: runtime.retry.attempts: expected a whole number of calls, at least 1, \
         or \"forever\", got \"always\""
    );
    assert_eq!(
        error(&retry("{ initial_backoff = \"3s\" }")),
        "p.toml:2:29: runtime.retry: initial_backoff (3s) is longer than max_backoff (2s); \
         expected initial_backoff ≤ max_backoff"
    );
}

#[test]
fn csv_is_for_files_and_checkpoints_for_file_sources() {
    assert_eq!(
        error(&MINIMAL.replace("\"jsonl\"", "\"csv\"")),
        "p.toml:4:10: source.format: `csv` is for files; expected `lines` or `jsonl` for a \
         `stdin` source"
    );
    assert_eq!(
        error(&format!("{MINIMAL}[checkpoint]\ndir = \"state\"\n")),
        "p.toml:8:1: checkpoint: checkpoints need a `file` or `postgres` source (a `stdin` \
         source cannot be read again from a position); expected no [checkpoint] section"
    );
    assert_eq!(
        error(&format!("{MINIMAL}[checkpoint]\ninterval = \"1s\"\n")),
        "p.toml:8:1: checkpoint: missing key `dir`"
    );
}

#[test]
fn a_syntax_error_has_its_line_and_column() {
    let message = error(&format!("{MINIMAL}[dead_letter\npath = \"d\"\n"));
    assert!(message.starts_with("p.toml:8:13: "), "{message}");
    assert!(message.contains("expected `]`"), "{message}");
    let message = errors("[source]\ntype = \"stdin\"\ntype = \"file\"\n");
    assert!(message[0].starts_with("p.toml:3:1: "), "{message:?}");
    assert!(message[0].contains("duplicate key"), "{message:?}");
}

#[test]
fn several_errors_come_in_the_order_of_the_file() {
    let text = format!(
        "[runtime]\ntick = \"1 s\"\nmax_workers = 0\n{}[[stage]]\ntype = \"exec\"\n",
        MINIMAL.replace("\"stdin\"", "\"tcp\"")
    );
    let found = errors(&text);
    let places: Vec<&str> = found
        .iter()
        .map(|error| error.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(
        places,
        [
            "runtime.tick",
            "runtime.max_workers",
            "source.type",
            "stage[0]",
            "stage[0]"
        ],
        "{found:#?}"
    );
}

#[test]
fn environment_variables_are_interpolated_after_parsing() {
    // A value holding quotes and newlines cannot break the file.
    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"${DB_DIR}/$${literal}/$$/${TABLE}\"",
    );
    let SinkConfig::File(sink) = spec(&text).sink.config else {
        panic!()
    };
    assert_eq!(sink.path, Path::new("/var/db/${literal}/$$/orders"));

    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"${PGPASSWORD}\"",
    );
    assert_eq!(
        error(&text),
        "p.toml:8:8: sink.path: the environment variable `PGPASSWORD` is not set"
    );
    let text = format!(
        "{MINIMAL}[[stage]]\nname = \"e\"\ntype = \"exec\"\ncommand = [\"x\", \"${{RAW}}\"]\n"
    );
    assert_eq!(
        error(&text),
        "p.toml:11:17: stage.e.command[1]: the environment variable `RAW` is not valid UTF-8"
    );
}

#[test]
fn parse_and_load_read_the_process_environment_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nightly.toml");
    // SAFETY of the test: a name no other test reads.
    std::env::set_var("BRIGADE_PIPELINE_TEST_OUT", "from-env.jsonl");
    let text = MINIMAL.replace(
        "type = \"stdout\"",
        "type = \"file\"\npath = \"${BRIGADE_PIPELINE_TEST_OUT}\"",
    );
    std::fs::write(&path, &text).unwrap();
    let spec = load(&path).unwrap();
    assert_eq!(spec.name, "nightly");
    assert_eq!(spec.base, dir.path());
    let SinkConfig::File(sink) = &spec.sink.config else {
        panic!()
    };
    assert_eq!(sink.path, Path::new("from-env.jsonl"));
    assert_eq!(parse(&text, &path).unwrap(), spec);

    let missing = dir.path().join("missing.toml");
    let Errors(errors) = load(&missing).unwrap_err();
    let message = errors[0].to_string();
    assert!(
        message.starts_with(&format!(
            "{}: cannot read the pipeline file: ",
            missing.display()
        )),
        "{message}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_any_text(text in "\\PC*") {
        let _ = parse(&text, Path::new("any.toml"));
    }

    #[test]
    fn parse_never_panics_on_a_mutated_valid_file(
        at in 0..FULL.len(),
        cut in 0..8usize,
        insert in "[\\[\\]{}=\"$,.0-9a-z\\n ]{0,6}",
    ) {
        let mut text = FULL.as_bytes().to_vec();
        let end = (at + cut).min(text.len());
        text.splice(at..end, insert.bytes());
        let text = String::from_utf8_lossy(&text);
        let _ = read(&text, Path::new("m.toml"), &env);
    }
}
