//! The file source against real files: formats, origins, malformed input, and
//! checkpoints across reruns, renames and rotations.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_runtime::{Failure, Pipeline, Source};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::out::{FileSink, FileSinkConfig};
use crate::raw::{decode, Raw, RawData};
use crate::units::Span;

fn config(path: &str, format: Format) -> FileSourceConfig {
    FileSourceConfig {
        path: path.to_owned(),
        format,
        order: FileOrder::Name,
        max_line: None,
        id: None,
        checkpoint_interval: None,
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Each raw as `origin=text`, the text decoded as `format` says (or the error).
fn show(raw: Raw, format: Format) -> String {
    let origin = raw.origin.to_string();
    match decode(raw, format) {
        Ok(record) => format!("{origin}={}", record.value),
        Err(error) => format!("{origin}!{}", error.error),
    }
}

fn read_all(source: &mut FileSource, format: Format) -> Vec<String> {
    std::iter::from_fn(|| source.next())
        .map(|raw| show(raw, format))
        .collect()
}

fn store(dir: &Path) -> CheckpointStore {
    CheckpointStore::open(&dir.join("checkpoints")).unwrap()
}

fn numbered_lines(count: usize) -> String {
    (1..=count).map(|n| format!("{{\"n\":{n}}}\n")).collect()
}

#[test]
fn lines_json_lines_csv_and_gzip_with_their_origins() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.txt"), "one\r\ntwo\n\nthree").unwrap();
    let mut source = FileSource::open(&config("*.txt", Format::Lines), base, None).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Lines),
        [
            "a.txt:1=\"one\"",
            "a.txt:2=\"two\"",
            "a.txt:3=\"\"",
            "a.txt:4=\"three\""
        ]
    );

    fs::write(base.join("b.jsonl"), "{\"a\":1}\n\n  \n[2]\n").unwrap();
    fs::write(base.join("c.jsonl.gz"), gzip(b"3\n\"four\"\n")).unwrap();
    let mut source = FileSource::open(&config("*.jsonl*", Format::Jsonl), base, None).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Jsonl),
        [
            "b.jsonl:1={\"a\":1}",
            "b.jsonl:4=[2]",
            "c.jsonl.gz:1=3",
            "c.jsonl.gz:2=\"four\""
        ]
    );

    fs::write(base.join("d.csv"), "id,note\n1,\"multi\nline\"\n2,plain\n").unwrap();
    fs::write(base.join("e.csv.gz"), gzip(b"x\n9\n")).unwrap();
    let mut source = FileSource::open(&config("*.csv*", Format::Csv), base, None).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Csv),
        [
            "d.csv:2={\"id\":\"1\",\"note\":\"multi\\nline\"}",
            "d.csv:4={\"id\":\"2\",\"note\":\"plain\"}",
            "e.csv.gz:2={\"x\":\"9\"}"
        ]
    );
}

#[test]
fn malformed_input_of_every_kind_is_one_record_with_its_origin_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let long = "x".repeat(40);
    let mut bytes = b"{\"bad\":".to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(b"\"a\xffb\"\n");
    fs::write(base.join("1.jsonl"), &bytes).unwrap();
    fs::write(base.join("2.jsonl"), format!("\"{long}\"\n3\n")).unwrap();
    let whole = gzip(numbered_lines(2000).as_bytes());
    fs::write(base.join("3.jsonl.gz"), &whole[..whole.len() / 2]).unwrap();
    fs::write(base.join("4.jsonl"), "4\n").unwrap();
    let mut cfg = config("*.jsonl*", Format::Jsonl);
    cfg.max_line = Some(Size(32));
    let mut source = FileSource::open(&cfg, base, None).unwrap();
    let shown = read_all(&mut source, Format::Jsonl);
    assert!(shown[0].starts_with("1.jsonl:1!invalid JSON"), "{shown:?}");
    assert!(shown[1].starts_with("1.jsonl:2!invalid JSON"), "{shown:?}");
    assert_eq!(
        shown[2],
        "2.jsonl:1!longer than max_line (32 bytes); skipped"
    );
    assert_eq!(shown[3], "2.jsonl:2=3");
    let truncated = shown.iter().position(|s| s.contains("gzip")).unwrap();
    assert!(shown[truncated].contains("3.jsonl.gz:") && shown[truncated].contains("truncated"));
    assert!(truncated > 4, "lines before the break are read: {shown:?}");
    assert_eq!(shown.last().unwrap(), "4.jsonl:1=4");
    assert_eq!(source.stats().unreadable.load(Relaxed), 2);

    fs::write(base.join("rows.csv"), b"a,b\n1,2\n1\n1,2,3\n\xff,2\n5,6\n").unwrap();
    let mut source = FileSource::open(&config("rows.csv", Format::Csv), base, None).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Csv),
        [
            "rows.csv:2={\"a\":\"1\",\"b\":\"2\"}",
            "rows.csv:3!the CSV row has 1 fields, the header has 2",
            "rows.csv:4!the CSV row has 3 fields, the header has 2",
            "rows.csv:5!invalid UTF-8 in column `a` at byte 0",
            "rows.csv:6={\"a\":\"5\",\"b\":\"6\"}"
        ]
    );
}

#[test]
fn a_resume_continues_exactly_after_the_acknowledged_record() {
    for (name, gz) in [("data.jsonl", false), ("data.jsonl.gz", true)] {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let text = numbered_lines(100);
        let bytes = if gz {
            gzip(text.as_bytes())
        } else {
            text.clone().into_bytes()
        };
        fs::write(base.join(name), bytes).unwrap();
        let cfg = config("data.jsonl*", Format::Jsonl);
        let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
        for _ in 0..80 {
            source.next().unwrap();
        }
        source.ack(30);
        drop(source);
        let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
        let rest = read_all(&mut source, Format::Jsonl);
        assert_eq!(rest.len(), 70, "{name}");
        assert_eq!(rest[0], format!("{name}:31={{\"n\":31}}"));
        assert_eq!(rest[69], format!("{name}:100={{\"n\":100}}"));
    }
}

#[test]
fn a_csv_resume_keeps_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("t.csv"), "k,v\na,1\nb,2\nc,3\n").unwrap();
    let cfg = config("t.csv", Format::Csv);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    source.next().unwrap();
    source.next().unwrap();
    source.ack(1);
    drop(source);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Csv),
        [
            "t.csv:3={\"k\":\"b\",\"v\":\"2\"}",
            "t.csv:4={\"k\":\"c\",\"v\":\"3\"}"
        ]
    );
}

#[test]
fn the_checkpoint_never_moves_past_the_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.jsonl"), numbered_lines(50)).unwrap();
    let mut cfg = config("a.jsonl", Format::Jsonl);
    cfg.checkpoint_interval = Some(Span(Duration::ZERO));
    let checkpoints = store(base);
    let mut source = FileSource::open(&cfg, base, Some(checkpoints.clone())).unwrap();
    assert_eq!(read_all(&mut source, Format::Jsonl).len(), 50);
    source.ack(3);
    let saved = checkpoints.load("a.jsonl").unwrap();
    let acked = numbered_lines(3).len() as u64;
    assert_eq!((saved.files[0].offset, saved.files[0].line), (acked, 3));
    assert!(!saved.files[0].done);
    assert_eq!(source.stats().acked.load(Relaxed), 3);
    drop(source);
    assert_eq!(checkpoints.load("a.jsonl").unwrap(), saved);
    let mut source = FileSource::open(&cfg, base, Some(checkpoints)).unwrap();
    let rest = read_all(&mut source, Format::Jsonl);
    assert_eq!((rest.len(), rest[0].as_str()), (47, "a.jsonl:4={\"n\":4}"));
}

#[test]
fn a_file_shorter_than_its_acknowledged_offset_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    // The same first KiB, so the same fingerprint: only the length tells them apart.
    let head = "h".repeat(PREFIX + 10);
    fs::write(base.join("a.txt"), format!("{head}\nline 2\nline 3\n")).unwrap();
    let cfg = config("a.txt", Format::Lines);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Lines).len(), 3);
    source.ack(3);
    drop(source);
    fs::write(base.join("a.txt"), format!("{head}\nnew\n")).unwrap();
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    let lines = read_all(&mut source, Format::Lines);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], "a.txt:2=\"new\"");
}

#[test]
fn finished_files_are_skipped_on_a_rerun_and_appended_lines_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.jsonl"), numbered_lines(3)).unwrap();
    fs::write(base.join("b.jsonl.gz"), gzip(b"1\n2\n")).unwrap();
    let cfg = config("*.jsonl*", Format::Jsonl);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Jsonl).len(), 5);
    source.ack(5);
    let progress = source.progress();
    assert_eq!(progress.files_done, 2);
    assert_eq!(Some(progress.bytes_done), progress.bytes_total);
    drop(source);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Jsonl), Vec::<String>::new());
    let stats = source.stats();
    assert_eq!(stats.files_skipped.load(Relaxed), 1);
    let progress = source.progress();
    assert_eq!((progress.files_done, progress.files_total), (2, Some(2)));
    assert_eq!(progress.fraction(), Some(1.0));
    drop(source);

    fs::OpenOptions::new()
        .append(true)
        .open(base.join("a.jsonl"))
        .unwrap()
        .write_all(b"{\"n\":4}\n")
        .unwrap();
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Jsonl),
        ["a.jsonl:4={\"n\":4}"]
    );
}

#[test]
fn a_renamed_file_is_not_reread_and_a_new_file_at_its_path_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(
        base.join("app.log"),
        "first run, line 1\nfirst run, line 2\n",
    )
    .unwrap();
    let cfg = config("app.log*", Format::Lines);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Lines).len(), 2);
    source.ack(1);
    drop(source);

    fs::rename(base.join("app.log"), base.join("app.log.1")).unwrap();
    fs::write(base.join("app.log"), "second file\n").unwrap();
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Lines),
        [
            "app.log:1=\"second file\"",
            "app.log.1:2=\"first run, line 2\""
        ]
    );
    source.ack(2);
    drop(source);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Lines), Vec::<String>::new());
}

#[test]
fn a_file_without_records_is_remembered_as_done() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("empty.csv.gz"), gzip(b"only,a,header\n")).unwrap();
    let cfg = config("*.csv.gz", Format::Csv);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert_eq!(read_all(&mut source, Format::Csv), Vec::<String>::new());
    drop(source);
    let mut source = FileSource::open(&cfg, base, Some(store(base))).unwrap();
    assert!(source.next().is_none());
    assert_eq!(source.stats().files_skipped.load(Relaxed), 1);
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_reported_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.txt"), "1\n2\n").unwrap();
    let mut cfg = config("a.txt", Format::Lines);
    cfg.checkpoint_interval = Some(Span(Duration::ZERO));
    let checkpoints = store(base);
    let mut source = FileSource::open(&cfg, base, Some(checkpoints.clone())).unwrap();
    let stats = source.stats();
    source.next().unwrap();
    source.next().unwrap();
    fs::remove_dir(base.join("checkpoints")).unwrap();
    source.ack(1);
    let error = stats.checkpoint_error.lock().unwrap().clone().unwrap();
    assert!(error.contains("checkpoints"), "{error}");
    fs::create_dir(base.join("checkpoints")).unwrap();
    source.ack(2);
    assert_eq!(*stats.checkpoint_error.lock().unwrap(), None);
    assert_eq!(checkpoints.load("a.txt").unwrap().files[0].line, 2);
}

#[test]
fn a_copy_of_a_file_in_the_same_run_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.txt"), "same\n").unwrap();
    fs::write(base.join("b.txt"), "same\n").unwrap();
    let mut source = FileSource::open(&config("*.txt", Format::Lines), base, None).unwrap();
    assert_eq!(read_all(&mut source, Format::Lines), ["a.txt:1=\"same\""]);
    assert_eq!(source.stats().files_skipped.load(Relaxed), 1);
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("a.txt"), "x\n").unwrap();
    let checkpoints = store(base);
    fs::write(checkpoints.path_for("*.txt"), "not json").unwrap();
    let error = FileSource::open(
        &config("*.txt", Format::Lines),
        base,
        Some(checkpoints.clone()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains(&checkpoints.path_for("*.txt").display().to_string()),
        "{error}"
    );
    assert!(error.contains("corrupt"), "{error}");
}

#[test]
fn files_are_read_by_modification_time_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    fs::write(base.join("b.txt"), "older\n").unwrap();
    fs::File::options()
        .write(true)
        .open(base.join("b.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::write(base.join("a.txt"), "newer\n").unwrap();
    let mut cfg = config("*.txt", Format::Lines);
    cfg.order = FileOrder::Modified;
    let mut source = FileSource::open(&cfg, base, None).unwrap();
    assert_eq!(
        read_all(&mut source, Format::Lines),
        ["b.txt:1=\"older\"", "a.txt:1=\"newer\""]
    );
}

#[test]
fn the_healthcheck_wants_a_valid_glob_matching_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    assert!(config("*.txt", Format::Lines).check(base)[0]
        .message
        .contains("matches no file"));
    assert!(config("[", Format::Lines).check(base)[0]
        .message
        .contains("invalid"));
    fs::write(base.join("a.txt"), "x\n").unwrap();
    assert_eq!(config("*.txt", Format::Lines).check(base), []);
}

/// File source → parallel decode → file sink, through the real runtime: every good
/// line reaches the sink, every bad one is dead-lettered with its origin, and the
/// checkpoint ends with the file done.
#[test]
fn a_whole_pipeline_loses_nothing_and_checkpoints_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let mut text = numbered_lines(2000);
    text.push_str("{broken\n");
    fs::write(base.join("in.jsonl"), &text).unwrap();
    let cfg = config("in.jsonl", Format::Jsonl);
    let checkpoints = store(base);
    let source = FileSource::open(&cfg, base, Some(checkpoints.clone())).unwrap();
    let sink_config = FileSinkConfig {
        path: "out.jsonl".into(),
    };
    let dead = Arc::new(Mutex::new(Vec::new()));
    let letters = Arc::clone(&dead);
    let sink_base = base.to_owned();
    let report = Pipeline::from_source(source)
        .on_dead_letter(move |letter| {
            let raw = letter.record::<Raw>().unwrap();
            letters
                .lock()
                .unwrap()
                .push(format!("{}: {}", raw.origin, letter.error));
        })
        .try_map("decode", |raw: Raw| {
            decode(raw, Format::Jsonl).map_err(|error| Failure::permanent(error.raw, error.error))
        })
        .workers(2, 2)
        .try_batch_sink("sink", move |batch: Vec<crate::Record>| {
            let mut sink = FileSink::open(&sink_config, &sink_base)
                .map_err(|error| Failure::permanent(Vec::new(), error))?;
            sink.write(&batch)
                .map_err(|error| Failure::transient(batch, error))
        })
        .batch_size(64)
        .run()
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let out = fs::read_to_string(base.join("out.jsonl")).unwrap();
    let mut seen: Vec<u64> = out
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=2000).collect::<Vec<_>>());
    let dead = dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].starts_with("in.jsonl:2001: invalid JSON"),
        "{dead:?}"
    );
    let saved = checkpoints.load("in.jsonl").unwrap();
    assert!(saved.files[0].done, "{saved:?}");
    assert_eq!(saved.files[0].offset, text.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the bytes, every line of a plain file is exactly one record, and the
    /// JSON-lines and CSV readers neither panic nor stop early.
    #[test]
    fn any_bytes_split_into_one_record_per_line(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'"'), Just(b','), Just(b'{'), any::<u8>()], 0..400),
        max_line in 1u64..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f.txt"), &bytes).unwrap();
        fs::write(dir.path().join("f.csv"), &bytes).unwrap();
        let mut cfg = config("f.txt", Format::Lines);
        cfg.max_line = Some(Size(max_line));
        let mut source = FileSource::open(&cfg, dir.path(), None).unwrap();
        let records: Vec<Raw> = std::iter::from_fn(|| source.next()).collect();
        let lines = bytes.split(|&b| b == b'\n').count() - usize::from(bytes.last() == Some(&b'\n') || bytes.is_empty());
        prop_assert_eq!(records.len(), lines);
        for (index, raw) in records.into_iter().enumerate() {
            prop_assert_eq!(raw.origin.to_string(), format!("f.txt:{}", index + 1));
            let _ = decode(raw, Format::Jsonl);
        }
        cfg.path = "f.csv".into();
        cfg.format = Format::Csv;
        let mut source = FileSource::open(&cfg, dir.path(), None).unwrap();
        while let Some(raw) = source.next() {
            if let RawData::Unreadable(message) = &raw.data {
                prop_assert!(!message.is_empty());
            }
            let _ = decode(raw, Format::Csv);
        }
    }
}
