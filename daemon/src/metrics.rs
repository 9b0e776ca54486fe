//! The exposition of `GET /metrics` (names in the crate docs): a prometheus-client
//! [`Collector`] that encodes the [`Board`] at each scrape. Names get the registry's
//! `brigade_` prefix, then the unit (`_seconds`, `_bytes`), then `_total` for counters.
//! OpenMetrics for the clients that ask for it (Prometheus does), else the Prometheus
//! text format 0.0.4, which is what promtool and older scrapers read.

use std::fmt::{self, Write};
use std::sync::Arc;

use brigade_controller::fleet::{recommend, Recommendation, DRAIN_WITHIN_S};
use brigade_controller::{GroupStats, Snapshot, StageStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    CounterValueEncoder, DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue,
    GaugeValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::board::{Board, Buckets, StageSums};
use crate::Shared;

/// The two formats `/metrics` is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The format a request's `Accept` header prefers: OpenMetrics when it ranks
    /// `application/openmetrics-text` at least as high as any text type it takes (as
    /// Prometheus does, `…openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,…`);
    /// else, as with no header or curl's `*/*`, the text format, as the official
    /// client libraries do.
    pub(crate) fn negotiate(accept: Option<&str>) -> Self {
        let (mut open_metrics, mut text) = (0.0_f64, 0.0_f64);
        for range in accept.unwrap_or("").split(',') {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f64>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open_metrics = open_metrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open_metrics > 0.0 && open_metrics >= text {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// The `Content-Type` of an exposition in this format.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A registry whose one collector reads the board.
pub(crate) fn registry(shared: Arc<Shared>) -> Registry {
    let mut registry = Registry::with_prefix("brigade");
    registry.register_collector(Box::new(BoardCollector(shared)));
    registry
}

/// The exposition text of `registry` in `format`.
pub(crate) fn encode(registry: &Registry, format: Format) -> Result<String, fmt::Error> {
    let mut open_metrics = String::new();
    prometheus_client::encoding::text::encode(&mut open_metrics, registry)?;
    Ok(match format {
        Format::OpenMetrics => open_metrics,
        Format::Text => to_text(&open_metrics)?,
    })
}

/// prometheus-client's OpenMetrics rewritten as the text format 0.0.4: without the
/// `# UNIT` and `# EOF` lines, and with a counter family's `# HELP` and `# TYPE` named
/// as its samples are (`…_total`), since the text format has no family names apart
/// from sample names. The rest (samples, labels, escapes in label values, histogram
/// series) is written alike in both; no `_created` series or exemplars are exported.
fn to_text(open_metrics: &str) -> Result<String, fmt::Error> {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?)));
        match descriptor {
            Some((tag, rest)) => {
                let (name, after) = rest.split_once(' ').unwrap_or((rest, ""));
                let total = if counters.contains(&name) {
                    "_total"
                } else {
                    ""
                };
                writeln!(text, "{tag}{name}{total} {after}")?;
            }
            None => writeln!(text, "{line}")?,
        }
    }
    Ok(text)
}

struct BoardCollector(Arc<Shared>);

impl fmt::Debug for BoardCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoardCollector")
    }
}

impl Collector for BoardCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        write_board(&self.0.board.lock(), &mut encoder)
    }
}

/// A figure as exported: counts as integers, the rest as floats.
#[derive(Clone, Copy)]
enum Num {
    Int(u64),
    Float(f64),
}

impl EncodeGaugeValue for Num {
    fn encode(&self, encoder: &mut GaugeValueEncoder) -> fmt::Result {
        match *self {
            Num::Int(v) => EncodeGaugeValue::encode(&v, encoder),
            Num::Float(v) => EncodeGaugeValue::encode(&v, encoder),
        }
    }
}

impl EncodeCounterValue for Num {
    fn encode(&self, encoder: &mut CounterValueEncoder) -> fmt::Result {
        match *self {
            Num::Int(v) => EncodeCounterValue::encode(&v, encoder),
            Num::Float(v) => EncodeCounterValue::encode(&v, encoder),
        }
    }
}

fn int(value: impl TryInto<u64>) -> Num {
    Num::Int(value.try_into().unwrap_or(u64::MAX))
}

fn float(value: f64) -> Num {
    Num::Float(value)
}

fn flag(on: bool) -> Num {
    Num::Int(u64::from(on))
}

/// The unit a family's name ends with (`_seconds`, `_bytes`), if any.
#[derive(Clone, Copy)]
enum In {
    Plain,
    Seconds,
    Bytes,
}

impl In {
    fn unit(self) -> Option<Unit> {
        match self {
            Plain => None,
            Seconds => Some(Unit::Seconds),
            Bytes => Some(Unit::Bytes),
        }
    }
}

use In::{Bytes, Plain, Seconds};
use MetricType::{Counter, Gauge};

/// A pipeline-wide family: type, name (after `brigade_`, before the unit), unit,
/// value (`None`: left out), help.
type GlobalFamily = (
    MetricType,
    &'static str,
    In,
    fn(&Board, &Snapshot) -> Option<Num>,
    &'static str,
);

#[rustfmt::skip]
const GLOBAL: [GlobalFamily; 45] = [
    (Gauge,   "tick",                          Plain,   |_, s| Some(int(s.tick)),                               "Number of the latest metrics window"),
    (Gauge,   "uptime",                        Seconds, |_, s| Some(float(s.at_s)),                             "Time since the pipeline started, at the end of the latest window"),
    (Gauge,   "window",                        Seconds, |_, s| Some(float(s.window_s)),                         "Length of the latest metrics window"),
    (Gauge,   "throughput_records_per_second", Plain,   |b, _| Some(float(b.throughput)),                       "Source records completed per second over the latest window"),
    (Counter, "records_admitted",              Plain,   |_, s| Some(int(s.global.totals.admitted)),             "Source records admitted into the pipeline"),
    (Counter, "records_completed",             Plain,   |_, s| Some(int(s.global.totals.completed)),            "Source records all of whose outputs finished"),
    (Counter, "records_dead_lettered",         Plain,   |_, s| Some(int(s.global.totals.dead_lettered)),        "Source records with an output sent to the dead-letter output"),
    (Gauge,   "records_in_flight",             Plain,   |_, s| Some(int(s.global.totals.in_flight)),            "Source records admitted and not yet finished"),
    (Gauge,   "inflight",                      Bytes,   |_, s| Some(float(s.global.inflight_bytes_mean)),       "Mean bytes in flight over the latest window"),
    (Gauge,   "inflight_max",                  Bytes,   |_, s| Some(int(s.global.inflight_bytes_max)),          "Most bytes in flight at once in the latest window"),
    (Gauge,   "memory_budget",                 Bytes,   |_, s| s.global.memory_budget.map(int),                 "Memory budget in force (absent: no cap)"),
    (Gauge,   "process_rss",                   Bytes,   |_, s| Some(int(s.global.rss_bytes)),                   "Resident set size of the process"),
    (Gauge,   "process_cpu_cores",             Plain,   |_, s| Some(float(s.global.cpu_percent / 100.0)),       "CPU the process used over the latest window, in cores"),
    (Gauge,   "machine_cores",                 Plain,   |_, s| Some(int(s.global.cores)),                       "Cores of the machine"),
    (Gauge,   "machine_memory",                Bytes,   |_, s| Some(int(s.global.machine_memory_bytes)),        "Total memory of the machine"),
    (Gauge,   "machine_available_memory",      Bytes,   |_, s| Some(int(s.global.machine_available_bytes)),     "Memory the machine has available"),
    (Counter, "source_read_records",           Plain,   |b, _| Some(int(b.source.records)),                     "Records read by the source"),
    (Counter, "source_read",                   Bytes,   |b, _| Some(int(b.source.bytes)),                       "Bytes (by weight) read by the source"),
    (Gauge,   "source_records_per_second",     Plain,   |_, s| Some(float(s.global.source.rate)),               "Records read per second over the latest window"),
    (Gauge,   "source_idle_gap",               Seconds, |_, s| Some(float(s.global.source.longest_idle_s)),     "Longest time the source went unread in the latest window"),
    (Gauge,   "source_idle_timeout",           Seconds, |_, s| s.global.source.idle_timeout_s.map(float),       "The source's idle timeout (absent: none)"),
    (Counter, "source_guard_reads",            Plain,   |b, _| Some(int(b.source.guard_reads)),                 "Records read by the source guard past back pressure"),
    (Counter, "spilled",                       Bytes,   |_, s| Some(int(s.global.source.spill.total_bytes)),    "Bytes the source guard wrote to the spill since the start (read while the budget was full)"),
    (Gauge,   "spill",                         Bytes,   |_, s| Some(int(s.global.source.spill.bytes)),          "Bytes waiting in the spill to re-enter the pipeline"),
    (Gauge,   "source_exhausted",              Plain,   |_, s| Some(flag(s.global.source.exhausted)),           "1 once the source has no more records or admission stopped"),
    (Gauge,   "source_files_done",             Plain,   |_, s| s.global.source.progress.map(|p| int(p.files_done)),                "Files (or other units) a finite source has read to their end (absent: it cannot say)"),
    (Gauge,   "source_files_expected",         Plain,   |_, s| s.global.source.progress.and_then(|p| p.files_total).map(int),  "Files (or other units) a finite source has in all (absent: not known)"),
    (Gauge,   "source_done",                   Bytes,   |_, s| s.global.source.progress.map(|p| int(p.bytes_done)),                "Bytes a finite source has read, as stored (absent: it cannot say)"),
    (Gauge,   "source_expected",               Bytes,   |_, s| s.global.source.progress.and_then(|p| p.bytes_total).map(int),  "Bytes a finite source has in all, as stored (absent: not known)"),
    (Gauge,   "group_lag",                     Plain,   |_, s| group(s).and_then(|g| g.lag).map(int),           "Entries in the stream not yet delivered to the consumer group (absent: no group, or the server cannot say)"),
    (Gauge,   "group_pending_own",             Plain,   |_, s| group(s).map(|g| int(g.pending_own)),            "Entries delivered to this process and not yet acknowledged"),
    (Gauge,   "group_pending_others",          Plain,   |_, s| group(s).map(|g| int(g.pending_others)),         "Entries delivered to the group's other consumers and not yet acknowledged"),
    (Gauge,   "group_consumers",               Plain,   |_, s| group(s).map(|g| int(g.consumers)),              "Consumers of the group active within the claim time, this one included"),
    (Counter, "group_claims",                  Plain,   |_, s| group(s).map(|g| int(g.claims)),                 "Entries this process claimed from consumers that went idle"),
    (Gauge,   "group_arrival_records_per_second", Plain, |_, s| group(s).and_then(|g| g.arrival_per_s).map(float), "Entries added to the stream per second, lately"),
    (Gauge,   "recommended_processes",         Plain,   |b, s| advice(b, s).map(|a| int(a.drain)),              "Processes that keep up with the group's arrivals and drain its lag within 10 minutes (absent: not known)"),
    (Gauge,   "recommended_processes_to_keep_up", Plain, |b, s| advice(b, s).map(|a| int(a.keep_up)),           "Processes that keep up with the group's arrivals, the lag no longer growing (absent: not known)"),
    (Gauge,   "serial_threshold",              Bytes,   |_, s| s.global.serial.threshold_bytes.map(int),        "Records at least this heavy go through the serial lane (absent: lane off)"),
    (Counter, "serial_records",                Plain,   |b, _| Some(int(b.serial.records)),                     "Records the serial lane finished"),
    (Counter, "serial",                        Bytes,   |b, _| Some(int(b.serial.bytes)),                       "Bytes the serial lane finished"),
    (Counter, "serial_busy",                   Seconds, |b, _| Some(float(b.serial.busy_s)),                    "Time the serial lane spent inside stage functions"),
    (Gauge,   "serial_current",                Bytes,   |_, s| Some(int(s.global.serial.current_bytes)),        "Weight of the record in the serial lane (0: idle)"),
    (Gauge,   "serial_waiting",                Bytes,   |_, s| Some(int(s.global.serial.waiting_bytes)),        "Weight of a record waiting for the budget to enter the serial lane (0: none)"),
    (Gauge,   "controller_paused",             Plain,   |_, s| Some(flag(s.paused)),                            "1 while the operator has paused the controller"),
    (Counter, "decisions",                     Plain,   |b, _| Some(int(b.decisions)),                          "Knob changes logged, the controller's and the operator's"),
];

/// The consumer group the source reads in, if any.
fn group(snapshot: &Snapshot) -> Option<&GroupStats> {
    snapshot.global.source.group.as_ref()
}

/// The processes the group's backlog calls for, from this process's capacity.
fn advice(board: &Board, snapshot: &Snapshot) -> Option<Recommendation> {
    recommend(group(snapshot)?, board.capacity.per_s()?, DRAIN_WITHIN_S)
}

/// One stage as the families see it.
struct Row<'a> {
    stats: &'a StageStats,
    sums: &'a StageSums,
    batch_size: usize,
    window_s: f64,
}

/// A per-stage family (label `stage`): type, name, unit, value, help.
type StageFamily = (MetricType, &'static str, In, fn(&Row) -> Num, &'static str);

#[rustfmt::skip]
const STAGE: [StageFamily; 27] = [
    (Gauge,   "stage_workers_live",           Plain,   |r| int(r.stats.workers.live),                "Worker threads running"),
    (Gauge,   "stage_workers_target",         Plain,   |r| int(r.stats.workers.target),              "Worker threads the pool is converging to"),
    (Gauge,   "stage_workers_min",            Plain,   |r| int(r.stats.workers.min),                 "Fewest workers the pool may have"),
    (Gauge,   "stage_workers_max",            Plain,   |r| int(r.stats.workers.max),                 "Most workers the pool may have"),
    (Gauge,   "stage_pinned",                 Plain,   |r| flag(r.stats.workers.pinned),             "1 while the operator pins the stage's workers"),
    (Gauge,   "stage_busy_ratio",             Plain,   |r| float(r.stats.utilisation()),             "Share of the workers' time spent working in the latest window"),
    (Gauge,   "stage_calls_running",          Plain,   |r| int(r.stats.running_calls_s.len()),       "Calls in progress at the end of the latest window"),
    (Gauge,   "stage_longest_call",           Seconds, |r| float(r.stats.running_calls_s.first().copied().unwrap_or(0.0)), "How long the longest call in progress has run (0 with none): a hung call holds its worker"),
    (Gauge,   "stage_wait_in_ratio",          Plain,   |r| float(r.stats.waiting_share()),           "Share of the workers' time waiting for input in the latest window"),
    (Gauge,   "stage_wait_out_ratio",         Plain,   |r| float(r.stats.blocked_share()),           "Share of the workers' time blocked on output, budget or limits in the latest window"),
    (Gauge,   "stage_queue_depth",            Plain,   |r| float(r.stats.queue.mean_depth),          "Mean records waiting in the input queue over the latest window"),
    (Gauge,   "stage_queue_depth_max",        Plain,   |r| int(r.stats.queue.max_depth),             "Most records waiting in the input queue in the latest window"),
    (Gauge,   "stage_queue_capacity",         Plain,   |r| int(r.stats.queue.capacity),              "Capacity of the input queue, records"),
    (Gauge,   "stage_batch_size",             Plain,   |r| int(r.batch_size),                        "Most records per call (1 but for batching sinks)"),
    (Gauge,   "stage_out_records_per_second", Plain,   |r| float(r.stats.observed_rate(r.window_s)), "Records emitted (or written) per second over the latest window"),
    (Counter, "stage_in_records",             Plain,   |r| int(r.sums.records_in),                   "Records taken from the input queue"),
    (Counter, "stage_out_records",            Plain,   |r| int(r.sums.records_out),                  "Records emitted, or written by the sink"),
    (Counter, "stage_in",                     Bytes,   |r| int(r.sums.bytes_in),                     "Bytes (by weight) taken from the input queue"),
    (Counter, "stage_out",                    Bytes,   |r| int(r.sums.bytes_out),                    "Bytes (by weight) emitted or written"),
    (Counter, "stage_errors",                 Plain,   |r| int(r.sums.errors),                       "Failed calls, panics included"),
    (Counter, "stage_retries",                Plain,   |r| int(r.sums.retries),                      "Calls repeated after a transient error"),
    (Counter, "stage_dead_lettered",          Plain,   |r| int(r.sums.dead_lettered),                "Records the stage sent to the dead-letter output"),
    (Counter, "stage_open_failures",          Plain,   |r| int(r.sums.open_failures),                "Workers that could not open their resource (a connection, a process)"),
    (Counter, "stage_busy",                   Seconds, |r| float(r.sums.busy_s),                     "Worker time spent inside the stage's function"),
    (Counter, "stage_wait_in",                Seconds, |r| float(r.sums.wait_in_s),                  "Worker time spent waiting for input"),
    (Counter, "stage_wait_out",               Seconds, |r| float(r.sums.wait_out_s),                 "Worker time spent blocked on output, budget or limits"),
    (Counter, "stage_worker",                 Seconds, |r| float(r.sums.worker_s),                   "Integral of the live worker count (worker-seconds)"),
];

/// A per-stage histogram: name, unit, buckets, help.
type StageHistogram = (&'static str, In, fn(&StageSums) -> &Buckets, &'static str);

#[rustfmt::skip]
const STAGE_HISTOGRAMS: [StageHistogram; 3] = [
    ("stage_service_time", Seconds, |s| &s.service_time, "Time per call of the stage's function"),
    ("stage_input_wait",   Seconds, |s| &s.input_wait,   "Time a worker waited for input before a call"),
    ("stage_record_size",  Bytes,   |s| &s.record_size,  "Weight of each input record"),
];

fn write_board(board: &Board, enc: &mut DescriptorEncoder) -> fmt::Result {
    let Some(snapshot) = &board.latest else {
        return Ok(());
    };
    for (kind, name, suffix, value, help) in GLOBAL {
        if let Some(value) = value(board, snapshot) {
            let unit = suffix.unit();
            let mut family = enc.encode_descriptor(name, help, unit.as_ref(), kind)?;
            write_value(&mut family, kind, value)?;
        }
    }
    let latency = &board.latency;
    let unit = Some(Unit::Seconds);
    enc.encode_descriptor(
        "latency",
        "Time from admission to completion of each record the sink finished",
        unit.as_ref(),
        MetricType::Histogram,
    )?
    .encode_histogram::<NoLabelSet>(latency.sum, latency.count, &latency.pairs(), None)?;

    let rows: Vec<Row> = snapshot
        .stages
        .iter()
        .zip(&board.stages)
        .enumerate()
        .map(|(i, (stats, sums))| Row {
            stats,
            sums,
            batch_size: snapshot.knobs.stages.get(i).map_or(1, |k| k.batch_size),
            window_s: snapshot.window_s,
        })
        .collect();
    for (kind, name, suffix, value, help) in STAGE {
        let unit = suffix.unit();
        let mut family = enc.encode_descriptor(name, help, unit.as_ref(), kind)?;
        for row in &rows {
            let labels = [("stage", row.stats.name.as_str())];
            write_value(&mut family.encode_family(&labels)?, kind, value(row))?;
        }
    }
    for (name, suffix, buckets, help) in STAGE_HISTOGRAMS {
        let unit = suffix.unit();
        let mut family = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Histogram)?;
        for row in &rows {
            let labels = [("stage", row.stats.name.as_str())];
            let buckets = buckets(row.sums);
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    buckets.sum,
                    buckets.count,
                    &buckets.pairs(),
                    None,
                )?;
        }
    }
    Ok(())
}

fn write_value(family: &mut MetricEncoder, kind: MetricType, value: Num) -> fmt::Result {
    match kind {
        Counter => family.encode_counter::<NoLabelSet, _, u64>(&value, None),
        _ => family.encode_gauge(&value),
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::{
        GlobalStats, Histogram, HistogramData, Knobs, Progress, Snapshot, SpillStats, StageKnobs,
        StageStats, WorkerStats,
    };
    use brigade_runtime::Tick;

    use super::*;

    fn exposition(ticks: &[Snapshot]) -> String {
        let shared = Arc::new(Shared::default());
        for snapshot in ticks {
            shared.board.lock().take(&Tick {
                snapshot: Arc::new(snapshot.clone()),
                decisions: Vec::new(),
            });
        }
        encode(&registry(shared), Format::OpenMetrics).unwrap()
    }

    fn snapshot(tick: u64) -> Snapshot {
        let mut service = Histogram::<u64>::new(3).unwrap();
        service.record(800).unwrap();
        service.record(3_000).unwrap();
        Snapshot {
            tick,
            at_s: tick as f64,
            window_s: 1.0,
            stages: vec![StageStats {
                name: "par\"se".into(),
                records_in: 10,
                busy_s: 0.5,
                worker_s: 1.0,
                workers: WorkerStats {
                    live: 2,
                    target: 3,
                    min: 1,
                    max: 8,
                    pinned: true,
                },
                service_time_us: HistogramData::from_histogram(&service),
                running_calls_s: vec![12.5, 0.25],
                ..StageStats::default()
            }],
            global: GlobalStats {
                memory_budget: Some(1 << 20),
                ..GlobalStats::default()
            },
            knobs: Knobs {
                stages: vec![StageKnobs {
                    batch_size: 4,
                    ..StageKnobs::default()
                }],
                ..Knobs::default()
            },
            paused: false,
        }
    }

    const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,\
        application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn openmetrics_for_those_who_prefer_it_else_the_text_format() {
        for (accept, format) in [
            (Some(PROMETHEUS_2_42), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some("Application/OpenMetrics-Text; q=0.5, text/plain; q=0.5"),
                Format::OpenMetrics,
            ),
            (None, Format::Text),
            (Some("*/*"), Format::Text),
            (Some("text/plain;version=0.0.4"), Format::Text),
            (
                Some("application/openmetrics-text;q=0.4,text/plain"),
                Format::Text,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Text),
            (Some("application/json"), Format::Text),
            (Some(",;;q=x,"), Format::Text),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
    }

    #[test]
    fn the_text_format_names_counter_families_as_their_samples_and_has_no_unit_or_eof() {
        let shared = Arc::new(Shared::default());
        shared.board.lock().take(&Tick {
            snapshot: Arc::new(snapshot(1)),
            decisions: Vec::new(),
        });
        let registry = registry(shared);
        let text = encode(&registry, Format::Text).unwrap();
        for line in [
            "# HELP brigade_stage_in_records_total Records taken from the input queue",
            "# TYPE brigade_stage_in_records_total counter",
            r#"brigade_stage_in_records_total{stage="par\"se"} 10"#,
            "# HELP brigade_stage_busy_seconds_total Worker time spent inside the stage's function",
            "# TYPE brigade_stage_busy_seconds_total counter",
            "# TYPE brigade_stage_workers_live gauge",
            r#"brigade_stage_workers_live{stage="par\"se"} 2"#,
            "# TYPE brigade_stage_service_time_seconds histogram",
            r#"brigade_stage_service_time_seconds_bucket{le="+Inf",stage="par\"se"} 2"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
        let open_metrics = encode(&registry, Format::OpenMetrics).unwrap();
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&text), samples(&open_metrics));
    }

    #[test]
    fn nothing_but_eof_before_the_first_tick() {
        assert_eq!(exposition(&[]), "# EOF\n");
    }

    #[test]
    fn stage_families_carry_the_stage_label() {
        let text = exposition(&[snapshot(1), snapshot(2)]);
        for line in [
            "# TYPE brigade_stage_workers_live gauge",
            r#"brigade_stage_workers_live{stage="par\"se"} 2"#,
            r#"brigade_stage_workers_target{stage="par\"se"} 3"#,
            r#"brigade_stage_pinned{stage="par\"se"} 1"#,
            r#"brigade_stage_busy_ratio{stage="par\"se"} 0.5"#,
            r#"brigade_stage_calls_running{stage="par\"se"} 2"#,
            "# UNIT brigade_stage_longest_call_seconds seconds",
            r#"brigade_stage_longest_call_seconds{stage="par\"se"} 12.5"#,
            r#"brigade_stage_batch_size{stage="par\"se"} 4"#,
            "# TYPE brigade_stage_in_records counter",
            r#"brigade_stage_in_records_total{stage="par\"se"} 20"#,
            "# TYPE brigade_stage_service_time_seconds histogram",
            "# UNIT brigade_stage_service_time_seconds seconds",
            r#"brigade_stage_service_time_seconds_bucket{le="0.001",stage="par\"se"} 2"#,
            r#"brigade_stage_service_time_seconds_bucket{le="0.005",stage="par\"se"} 4"#,
            r#"brigade_stage_service_time_seconds_bucket{le="+Inf",stage="par\"se"} 4"#,
            r#"brigade_stage_service_time_seconds_count{stage="par\"se"} 4"#,
            "brigade_memory_budget_bytes 1048576",
            "brigade_controller_paused 0",
            "brigade_tick 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("brigade_serial_threshold"), "{text}");
        assert!(!text.contains("brigade_source_files"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    /// Tick `tick` of a source reading 4 files of 1 KiB, with `failures` workers of the
    /// stage failing to open; the totals known only if `totals`.
    fn reading(tick: u64, failures: u64, totals: bool) -> Snapshot {
        let mut snapshot = snapshot(tick);
        snapshot.global.source.progress = Some(Progress {
            files_done: tick,
            files_total: totals.then_some(4),
            bytes_done: tick * 1024,
            bytes_total: totals.then_some(4096),
        });
        snapshot.stages[0].open_failures = failures;
        snapshot
    }

    #[test]
    fn a_finite_source_shows_how_far_it_has_read() {
        let text = exposition(&[reading(1, 0, true), reading(3, 0, true)]);
        for line in [
            "# TYPE brigade_source_files_done gauge",
            "brigade_source_files_done 3",
            "brigade_source_files_expected 4",
            "# UNIT brigade_source_done_bytes bytes",
            "brigade_source_done_bytes 3072",
            "brigade_source_expected_bytes 4096",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        let unknown = exposition(&[reading(2, 0, false)]);
        assert!(unknown
            .lines()
            .any(|l| l == "brigade_source_done_bytes 2048"));
        assert!(!unknown.contains("expected"), "{unknown}");
    }

    #[test]
    fn the_spill_shows_what_waits_and_what_went_through() {
        let mut spilling = snapshot(2);
        spilling.global.source.spill = SpillStats {
            capacity_bytes: Some(10 << 30),
            records: 3,
            bytes: 3072,
            total_records: 5,
            total_bytes: 5120,
        };
        let text = exposition(&[snapshot(1), spilling]);
        for line in [
            "# TYPE brigade_spilled_bytes counter",
            "brigade_spilled_bytes_total 5120",
            "# TYPE brigade_spill_bytes gauge",
            "brigade_spill_bytes 3072",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn open_failures_add_up_per_stage() {
        let text = exposition(&[
            reading(1, 2, true),
            reading(2, 0, true),
            reading(3, 1, true),
        ]);
        for line in [
            "# TYPE brigade_stage_open_failures counter",
            r#"brigade_stage_open_failures_total{stage="par\"se"} 3"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn a_source_in_a_consumer_group_shows_the_group_and_the_processes_it_calls_for() {
        let mut tick = snapshot(1);
        // 500 records written by a stage busy half the time: 1,000/s is this
        // process's capacity.
        tick.stages[0].records_out = 500;
        tick.global.source.group = Some(GroupStats {
            lag: Some(600_000),
            pending_own: 120,
            pending_others: 40,
            consumers: 2,
            claims: 7,
            arrival_per_s: Some(2_500.0),
        });
        let text = exposition(&[tick]);
        for line in [
            "brigade_group_lag 600000",
            "brigade_group_pending_own 120",
            "brigade_group_pending_others 40",
            "brigade_group_consumers 2",
            "brigade_group_claims_total 7",
            "brigade_group_arrival_records_per_second 2500.0",
            "brigade_recommended_processes 4",
            "brigade_recommended_processes_to_keep_up 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        let alone = exposition(&[snapshot(1)]);
        assert!(!alone.contains("brigade_group"), "{alone}");
        assert!(!alone.contains("recommended"), "{alone}");
    }
}
