//! The connectors as a library: JSON-lines files read, one field set, JSON lines
//! written — the pipeline `brigade run` builds from a pipeline file, built by hand with
//! `brigade_connectors`' pieces and the runtime's builder, without a pipeline file.
//!
//! ```sh
//! cargo run --release --example connectors_lib -- 'data/*.jsonl' out.jsonl [TICK]
//! ```
//!
//! `TICK` (such as `250ms`; default 1s) is how often the controller measures and
//! decides, as `brigade run --tick`.
//!
//! - the source: a [`FileSource`] over the glob, yielding each line unparsed (`Raw`);
//! - `decode`: each line parsed into a [`Record`] (a JSON value and its `file:line`), a
//!   line that is not JSON dead-lettered with its origin;
//! - `tag`: the `fields` stage setting `"seen": true` on every object;
//! - `sink`: a [`FileSink`] appending JSON lines, flushed and fsynced per batch.
//!
//! The adaptive controller sizes every stage and the sink's batch, within a 64 MiB
//! memory budget, as `brigade run` does for a pipeline file with the same settings.
//! Prints one JSON line of figures (records read and written, dead letters, seconds,
//! peak RSS) and exits 1 if the run was not clean or a record was dead-lettered.
//! `benches/connectors.rs` runs it beside `brigade run`, `cat` and `jq`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use brigade::controller::units::parse_duration;
use brigade::controller::Adaptive;
use brigade::runtime::{BoxError, Failure};
use brigade::Pipeline;
use brigade_connectors::fields::FieldsConfig;
use brigade_connectors::file::{FileOrder, FileSource, FileSourceConfig, Format};
use brigade_connectors::out::{FileSink, FileSinkConfig};
use brigade_connectors::raw::{decode, Raw};
use brigade_connectors::Record;

/// Bytes admitted and not yet written, at most: what keeps the peak RSS flat whatever
/// the input's size.
const MEMORY_BUDGET: u64 = 64 << 20;
/// The records per batch the sink starts with (the adaptive controller grows it).
const FIRST_BATCH: usize = 100;

/// The binary's allocator, so that the library and the CLI compare like for like.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let (Some(glob), Some(out), tick, None) = (args.next(), args.next(), args.next(), args.next())
    else {
        bail!("usage: connectors_lib 'IN_GLOB' OUT_FILE [TICK]");
    };
    let tick = match tick {
        Some(text) => match parse_duration(&text) {
            Ok(seconds) if seconds > 0.0 => Duration::from_secs_f64(seconds),
            _ => bail!("TICK `{text}`: expected a positive duration such as 250ms"),
        },
        None => Duration::from_secs(1),
    };

    let source_config = FileSourceConfig {
        path: glob,
        format: Format::Jsonl,
        order: FileOrder::Name,
        max_line: None,
        id: None,
        checkpoint_interval: None,
    };
    let source = FileSource::open(&source_config, Path::new("."), None)
        .with_context(|| format!("cannot open the source `{}`", source_config.path))?;
    let stats = source.stats();
    let tag = FieldsConfig {
        set: BTreeMap::from([("seen".to_owned(), serde_json::Value::Bool(true))]),
        ..FieldsConfig::default()
    };
    let sink_config = FileSinkConfig { path: out.into() };
    let written = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&written);

    let report = Pipeline::from_source(source)
        .try_map("decode", |raw: Raw| {
            decode(raw, Format::Jsonl).map_err(|error| Failure::permanent(error.raw, error.error))
        })
        .try_map("tag", move |mut record: Record| {
            match tag.apply(&mut record.value) {
                Ok(()) => Ok(record),
                Err(error) => Err(Failure::permanent(record, error)),
            }
        })
        .controller(Adaptive::new())
        .tick(tick)
        .memory_budget(MEMORY_BUDGET)
        .try_batch_sink_with(
            "sink",
            move || FileSink::open(&sink_config, Path::new(".")).map_err(BoxError::from),
            move |file, batch| match file.write(&batch) {
                Ok(()) => {
                    counted.fetch_add(batch.len() as u64, Relaxed);
                    Ok(Vec::new())
                }
                Err(error) => Err(Failure::transient(batch, error)),
            },
        )
        .batch_size(FIRST_BATCH)
        .run()?;

    let figures = serde_json::json!({
        "records": stats.records.load(Relaxed),
        "bytes_read": stats.bytes_read.load(Relaxed),
        "written": written.load(Relaxed),
        "dead_lettered": report.dead_lettered,
        "elapsed_s": report.elapsed_s,
        "peak_rss_bytes": report.peak_rss_bytes,
    });
    println!("{figures}");
    for failure in &report.failures {
        eprintln!("error: {failure}");
    }
    for letter in report.dead_letters.iter().take(5) {
        eprintln!(
            "dead letter: {} at record {}: {}",
            letter.stage, letter.position, letter.error
        );
    }
    Ok(if report.is_clean() && report.dead_lettered == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
