//! Reading scenario files into a [`Scenario`].
//!
//! The TOML is walked by hand rather than through serde so that every error can name
//! the key (`stage[2].service.median`), its line, and what is wrong with it. Each table
//! first has its keys checked against the ones it may hold; then each key is read with
//! its unit, type and range checked.
//!
//! Beyond `docs/scenarios.md`, any distribution-valued key (`source.size`,
//! `source.giant[i].size`, `stage[i].service`) also takes a single value, meaning a
//! fixed distribution: `size = "150MiB"` is `{ dist = "fixed", value = "150MiB" }`.

use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

use toml_edit::{Document, Item, Table, TableLike, Value};

use crate::error::ScenarioError;
use crate::model::{
    Coordination, Dist, Fleet, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario,
    SourceSpec, StageKind, StageSpec,
};
use crate::units::{parse_duration, parse_size};

type Result<T, E = ScenarioError> = std::result::Result<T, E>;

/// Reads and parses the scenario file at `path`; errors name the file as
/// `path.display()` shows it.
pub fn load(path: &Path) -> Result<Scenario> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_str(&text, &file),
        Err(source) => Err(ScenarioError::Io { file, source }),
    }
}

/// Parses the text of a scenario file; `file` names it in errors.
pub fn parse_str(text: &str, file: &str) -> Result<Scenario> {
    let empty = Table::new();
    let cx = Cx { text, file };
    let doc = Document::parse(text).map_err(|err| ScenarioError::Syntax {
        file: file.to_owned(),
        line: cx.line(err.span()),
        message: err.message().to_owned(),
    })?;
    let root = Tbl {
        cx,
        path: String::new(),
        line: None,
        table: doc.as_table(),
    };
    scenario(&root, &empty)
}

fn scenario<'a>(root: &Tbl<'a>, empty: &'a Table) -> Result<Scenario> {
    root.allow(&[
        "name",
        "description",
        "duration",
        "tick",
        "seed",
        "machine",
        "runtime",
        "source",
        "stage",
        "phase",
        "fleet",
    ])?;
    let name = root.req("name", Field::name)?.to_owned();
    let description = root.opt("description", Field::string)?.unwrap_or_default();
    let duration_s = root.req("duration", Field::positive_duration)?;
    let tick_s = root.opt("tick", Field::positive_duration)?.unwrap_or(1.0);
    let seed = root.opt("seed", |f| f.count(0))?.unwrap_or(0);
    let machine = machine(&root.section("machine", empty)?)?;
    let runtime = runtime(&root.section("runtime", empty)?)?;
    let source = source(&root.req("source", Field::table)?)?;
    let stages = stages(root)?;
    let names: Vec<&str> = stages.iter().map(|stage| stage.name.as_str()).collect();
    let mut phases = match root.get("phase") {
        Some(field) => field
            .tables()?
            .iter()
            .map(|table| phase(table, &names))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    phases.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let fleet = root.opt("fleet", |f| fleet(&f.table()?))?;
    Ok(Scenario {
        name,
        description: description.to_owned(),
        duration_s,
        tick_s,
        seed,
        machine,
        runtime,
        source,
        stages,
        phases,
        fleet,
    })
}

fn fleet(t: &Tbl) -> Result<Fleet> {
    t.allow(&["processes", "coordination", "join"])?;
    Ok(Fleet {
        processes: t.req("processes", |f| f.count_usize(2))?,
        coordination: t
            .opt("coordination", |f| {
                f.choice(&[
                    ("leader", Coordination::Leader),
                    ("none", Coordination::None),
                ])
            })?
            .unwrap_or(Coordination::Leader),
        join_s: t.opt("join", Field::duration)?.unwrap_or(0.0),
    })
}

fn machine(t: &Tbl) -> Result<Machine> {
    t.allow(&["cores", "memory", "disk_per_mib"])?;
    Ok(Machine {
        cores: t.opt("cores", |f| f.count_usize(1))?.unwrap_or(8),
        memory_bytes: t.opt("memory", Field::positive_size)?.unwrap_or(8 << 30),
        disk_per_mib_s: t.opt("disk_per_mib", Field::duration)?.unwrap_or(0.005),
    })
}

fn runtime(t: &Tbl) -> Result<RuntimeSettings> {
    t.allow(&[
        "memory_budget",
        "spill",
        "initial_workers",
        "max_workers",
        "queue_capacity",
        "batch_size",
    ])?;
    let max_workers = t.opt("max_workers", |f| f.count_usize(1))?;
    let max = max_workers.unwrap_or(64);
    let initial = t.opt("initial_workers", |f| {
        let initial = f.count_usize(1)?;
        let cap = match max_workers {
            Some(max) => format!("{max}"),
            None => format!("by default {max}"),
        };
        f.check(
            initial <= max,
            format!("must be at most max_workers ({cap})"),
        )?;
        Ok(initial)
    })?;
    Ok(RuntimeSettings {
        memory_budget: t.opt("memory_budget", Field::positive_size)?,
        spill: t.opt("spill", Field::positive_size)?,
        initial_workers: initial.unwrap_or(1),
        max_workers: max,
        queue_capacity: t.opt("queue_capacity", |f| f.count_usize(1))?.unwrap_or(64),
        batch_size: t.opt("batch_size", |f| f.count_usize(1))?.unwrap_or(1),
    })
}

fn source(t: &Tbl) -> Result<SourceSpec> {
    t.allow(&[
        "rate",
        "total",
        "idle_timeout",
        "on_timeout",
        "reconnect",
        "size",
        "giant",
    ])?;
    let giants = match t.get("giant") {
        Some(field) => field
            .tables()?
            .iter()
            .map(giant)
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(SourceSpec {
        rate: t.req("rate", Field::positive)?,
        total: t.opt("total", |f| f.count(1))?,
        idle_timeout_s: t.opt("idle_timeout", Field::positive_duration)?,
        on_timeout: t
            .opt("on_timeout", |f| {
                f.choice(&[
                    ("fail", OnTimeout::Fail),
                    ("reconnect", OnTimeout::Reconnect),
                ])
            })?
            .unwrap_or_default(),
        reconnect_s: t.opt("reconnect", Field::duration)?.unwrap_or(10.0),
        size: t.req("size", |f| dist(f, Quantity::Size))?,
        giants,
    })
}

fn giant(t: &Tbl) -> Result<Giant> {
    t.allow(&["every", "size"])?;
    Ok(Giant {
        every: t.req("every", |f| f.count(1))?,
        size: t.req("size", |f| dist(f, Quantity::Size))?,
    })
}

fn stages(root: &Tbl) -> Result<Vec<StageSpec>> {
    const NEEDED: &str = "a scenario needs at least one [[stage]]";
    let Some(field) = root.get("stage") else {
        return Err(root.missing("stage", format!("missing required key: {NEEDED}")));
    };
    let tables = field.tables()?;
    if tables.is_empty() {
        return Err(field.err(NEEDED));
    }
    let mut stages: Vec<StageSpec> = Vec::with_capacity(tables.len());
    for (index, t) in tables.iter().enumerate() {
        t.allow(&[
            "name",
            "kind",
            "service",
            "per_mib",
            "output_ratio",
            "size_ratio",
            "contention",
            "coherency",
            "error_rate",
            "batch",
        ])?;
        let name = t.req("name", |f| {
            let name = f.name()?;
            match stages.iter().position(|stage| stage.name == name) {
                Some(other) => Err(f.err(format!(
                    "duplicate stage name {}: stage[{other}] has it too",
                    f.got()
                ))),
                None => Ok(name),
            }
        })?;
        let last = index + 1 == tables.len();
        let batch = t.opt("batch", |f| {
            let batch = f.boolean()?;
            if batch && !last {
                return Err(f.err("only the last stage, the sink, may take batches"));
            }
            Ok(batch)
        })?;
        stages.push(StageSpec {
            name: name.to_owned(),
            kind: t.req("kind", |f| {
                f.choice(&[("cpu", StageKind::Cpu), ("io", StageKind::Io)])
            })?,
            service: t.req("service", |f| dist(f, Quantity::Duration))?,
            per_mib_s: t.opt("per_mib", Field::duration)?.unwrap_or(0.0),
            output_ratio: t.opt("output_ratio", Field::non_negative)?.unwrap_or(1.0),
            size_ratio: t.opt("size_ratio", Field::non_negative)?.unwrap_or(1.0),
            contention: t.opt("contention", Field::non_negative)?.unwrap_or(0.0),
            coherency: t.opt("coherency", Field::non_negative)?.unwrap_or(0.0),
            error_rate: t.opt("error_rate", Field::probability)?.unwrap_or(0.0),
            batch: batch.unwrap_or(false),
        });
    }
    Ok(stages)
}

fn phase(t: &Tbl, stages: &[&str]) -> Result<Phase> {
    t.allow(&["at", "stage", "service_scale", "source_rate", "stall"])?;
    let at_s = t.req("at", Field::duration)?;
    let stage = t.opt("stage", |f| {
        let name = f.string()?;
        stages
            .iter()
            .position(|&stage| stage == name)
            .ok_or_else(|| {
                let known: Vec<String> = stages.iter().map(|stage| format!("{stage:?}")).collect();
                f.err(format!(
                    "no stage named {}; the stages are {}",
                    f.got(),
                    known.join(", ")
                ))
            })
    })?;
    let scale = t.opt("service_scale", Field::positive)?;
    let stall = t.opt("stall", Field::duration)?;
    if stall == Some(0.0) {
        let message = "a stall of no time changes nothing: give it a positive duration";
        return Err(t.cx.invalid(&t.path, t.line, message));
    }
    let (service_scale, stall) = match (stage, scale, stall) {
        (Some(stage), scale, stall) if scale.is_some() || stall.is_some() => (
            scale.map(|scale| (stage, scale)),
            stall.map(|stall| (stage, stall)),
        ),
        (None, None, None) => (None, None),
        (Some(_), _, _) => {
            return Err(t.missing(
                "service_scale",
                "missing: `stage` is set, so the phase needs the `service_scale` or the \
                 `stall` to apply to it",
            ));
        }
        (None, scale, _) => {
            let key = if scale.is_some() {
                "service_scale"
            } else {
                "stall"
            };
            return Err(t.missing(
                "stage",
                format!("missing: `{key}` is set, so the phase needs the `stage` it applies to"),
            ));
        }
    };
    let source_rate = t.opt("source_rate", Field::positive)?;
    if service_scale.is_none() && source_rate.is_none() && stall.is_none() {
        let message = "a phase that changes nothing: give `stage` and `service_scale` or \
                       `stall`, or `source_rate`";
        return Err(t.cx.invalid(&t.path, t.line, message));
    }
    Ok(Phase {
        at_s,
        service_scale,
        source_rate,
        stall,
    })
}

/// What the values of a distribution are.
#[derive(Clone, Copy)]
enum Quantity {
    /// Seconds, written as durations.
    Duration,
    /// Bytes, written as sizes.
    Size,
}

impl Quantity {
    fn read(self, f: &Field) -> Result<f64> {
        match self {
            Self::Duration => f.duration(),
            // A size of 2^53 bytes or more loses a little precision: immaterial.
            Self::Size => f.size().map(|bytes| bytes as f64),
        }
    }
}

/// The families of distributions, by their `dist` names.
#[derive(Clone, Copy)]
enum Family {
    Fixed,
    Uniform,
    LogNormal,
    Pareto,
}

/// A distribution table of `quantity`s, or a single value meaning a fixed one.
fn dist(f: &Field, quantity: Quantity) -> Result<Dist> {
    if !f.is_table() {
        return quantity.read(f).map(|value| Dist::Fixed { value });
    }
    let t = f.table()?;
    let family = t.req("dist", |f| {
        f.choice(&[
            ("fixed", Family::Fixed),
            ("uniform", Family::Uniform),
            ("lognormal", Family::LogNormal),
            ("pareto", Family::Pareto),
        ])
    })?;
    let read = |f: &Field| quantity.read(f);
    let positive = |f: &Field| {
        let value = quantity.read(f)?;
        f.check(value > 0.0, "must be greater than 0")?;
        Ok(value)
    };
    Ok(match family {
        Family::Fixed => {
            t.allow(&["dist", "value"])?;
            Dist::Fixed {
                value: t.req("value", read)?,
            }
        }
        Family::Uniform => {
            t.allow(&["dist", "min", "max"])?;
            let min = t.req("min", read)?;
            let max = t.req("max", |f| {
                let max = read(f)?;
                f.check(
                    max >= min,
                    format!("must be at least min ({})", t.got("min")),
                )?;
                Ok(max)
            })?;
            Dist::Uniform { min, max }
        }
        Family::LogNormal => {
            t.allow(&["dist", "median", "p99"])?;
            let median = t.req("median", positive)?;
            let p99 = t.req("p99", |f| {
                let p99 = read(f)?;
                f.check(
                    p99 >= median,
                    format!("must be at least the median ({})", t.got("median")),
                )?;
                Ok(p99)
            })?;
            Dist::LogNormal { median, p99 }
        }
        Family::Pareto => {
            t.allow(&["dist", "min", "alpha"])?;
            Dist::Pareto {
                min: t.req("min", positive)?,
                alpha: t.req("alpha", Field::positive)?,
            }
        }
    })
}

/// The file being parsed: its text, for lines and quotes, and its name, for errors.
#[derive(Clone, Copy)]
struct Cx<'a> {
    text: &'a str,
    file: &'a str,
}

impl<'a> Cx<'a> {
    /// The 1-based line where `span` starts.
    fn line(self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.text.len());
        Some(
            self.text.as_bytes()[..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        )
    }

    fn invalid(self, key: &str, line: Option<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            line,
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// A table (`[x]`, `[[x]]` entry or inline) at a key path.
struct Tbl<'a> {
    cx: Cx<'a>,
    /// Key path; empty for the top level.
    path: String,
    /// Line of its header (or opening brace); `None` for the top level.
    line: Option<usize>,
    table: &'a dyn TableLike,
}

impl<'a> Tbl<'a> {
    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Fails on the first key not in `known`.
    fn allow(&self, known: &[&str]) -> Result<()> {
        let table = self.table;
        match table.iter().find(|(key, _)| !known.contains(key)) {
            Some((key, _)) => {
                let line = self.cx.line(table.key(key).and_then(|key| key.span()));
                let message = format!("unknown key; the keys here are {}", known.join(", "));
                Err(self.cx.invalid(&self.path_of(key), line, message))
            }
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<Field<'a>> {
        let table = self.table;
        let (name, item) = table.get_key_value(key)?;
        Some(Field {
            cx: self.cx,
            path: self.path_of(key),
            line: self.cx.line(item.span().or_else(|| name.span())),
            item,
        })
    }

    /// `key` read by `read`, or `None` if absent.
    fn opt<T>(&self, key: &str, read: impl FnOnce(&Field<'a>) -> Result<T>) -> Result<Option<T>> {
        self.get(key).as_ref().map(read).transpose()
    }

    /// `key` read by `read`; an error if absent.
    fn req<T>(&self, key: &str, read: impl FnOnce(&Field<'a>) -> Result<T>) -> Result<T> {
        match self.get(key) {
            Some(field) => read(&field),
            None => Err(self.missing(key, "missing required key")),
        }
    }

    /// The table at `key`, or `empty` (all defaults) if absent.
    fn section(&self, key: &str, empty: &'a Table) -> Result<Tbl<'a>> {
        match self.get(key) {
            Some(field) => field.table(),
            None => Ok(Tbl {
                cx: self.cx,
                path: self.path_of(key),
                line: None,
                table: empty,
            }),
        }
    }

    /// An error about `key`, which is absent, at this table's line.
    fn missing(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        self.cx.invalid(&self.path_of(key), self.line, message)
    }

    /// How `key`'s value is written, for messages about another key.
    fn got(&self, key: &str) -> String {
        self.get(key).map(|field| field.got()).unwrap_or_default()
    }
}

/// One key's value, with its path and line.
struct Field<'a> {
    cx: Cx<'a>,
    path: String,
    line: Option<usize>,
    item: &'a Item,
}

impl<'a> Field<'a> {
    fn err(&self, message: impl Into<String>) -> ScenarioError {
        self.cx.invalid(&self.path, self.line, message)
    }

    /// "`rule`, got `value`".
    fn broken(&self, rule: impl Display) -> ScenarioError {
        self.err(format!("{rule}, got {}", self.got()))
    }

    /// Fails with [`Self::broken`] unless `ok`.
    fn check(&self, ok: bool, rule: impl Display) -> Result<()> {
        if ok {
            Ok(())
        } else {
            Err(self.broken(rule))
        }
    }

    fn expected(&self, what: impl Display) -> ScenarioError {
        self.err(format!("expected {what}, got {}", self.got()))
    }

    /// The value as written, or what kind of thing it is when that would be long.
    fn got(&self) -> String {
        let written = || Some(self.cx.text.get(self.item.span()?)?.to_owned());
        match self.item {
            Item::Value(Value::Array(_)) => "an array".to_owned(),
            Item::Value(Value::InlineTable(_)) | Item::Table(_) => "a table".to_owned(),
            Item::ArrayOfTables(_) => "an array of tables".to_owned(),
            Item::Value(_) => written().unwrap_or_else(|| "a value".to_owned()),
            Item::None => "nothing".to_owned(),
        }
    }

    fn is_table(&self) -> bool {
        self.item.is_table_like()
    }

    fn table(&self) -> Result<Tbl<'a>> {
        let table: &'a dyn TableLike = match self.item {
            Item::Table(table) => table,
            Item::Value(Value::InlineTable(table)) => table,
            _ => return Err(self.expected("a table")),
        };
        Ok(Tbl {
            cx: self.cx,
            path: self.path.clone(),
            line: self.line,
            table,
        })
    }

    /// The entries of an array of tables (`[[x]]`, or an array of inline tables).
    fn tables(&self) -> Result<Vec<Tbl<'a>>> {
        let entry = |index: usize, line: Option<usize>, table: &'a dyn TableLike| Tbl {
            cx: self.cx,
            path: format!("{}[{index}]", self.path),
            line,
            table,
        };
        match self.item {
            Item::ArrayOfTables(tables) => Ok(tables
                .iter()
                .enumerate()
                .map(|(index, table)| entry(index, self.cx.line(table.span()), table))
                .collect()),
            Item::Value(Value::Array(values)) => values
                .iter()
                .enumerate()
                .map(|(index, value)| match value {
                    Value::InlineTable(table) => {
                        Ok(entry(index, self.cx.line(table.span()), table))
                    }
                    _ => {
                        let written = value.span().and_then(|span| self.cx.text.get(span));
                        Err(self.cx.invalid(
                            &format!("{}[{index}]", self.path),
                            self.cx.line(value.span()),
                            format!("expected a table, got {}", written.unwrap_or("a value")),
                        ))
                    }
                })
                .collect(),
            _ => Err(self.expected(format!("an array of tables ([[{}]])", self.path))),
        }
    }

    fn string(&self) -> Result<&'a str> {
        match self.item {
            Item::Value(Value::String(s)) => Ok(s.value()),
            _ => Err(self.expected("a string")),
        }
    }

    /// A string that is not blank.
    fn name(&self) -> Result<&'a str> {
        let name = self.string()?;
        self.check(!name.trim().is_empty(), "must not be blank")?;
        Ok(name)
    }

    /// One of the strings in `options`, as its `T`.
    fn choice<T: Copy>(&self, options: &[(&str, T)]) -> Result<T> {
        let found = match self.item {
            Item::Value(Value::String(s)) => options.iter().find(|(name, _)| *name == s.value()),
            _ => None,
        };
        found.map(|&(_, value)| value).ok_or_else(|| {
            let names: Vec<String> = options
                .iter()
                .map(|(name, _)| format!("{name:?}"))
                .collect();
            let (last, rest) = names.split_last().expect("options are given");
            self.expected(if rest.is_empty() {
                last.clone()
            } else {
                format!("{} or {last}", rest.join(", "))
            })
        })
    }

    fn boolean(&self) -> Result<bool> {
        match self.item {
            Item::Value(Value::Boolean(b)) => Ok(*b.value()),
            _ => Err(self.expected("true or false")),
        }
    }

    /// A finite number; integers are numbers too.
    fn number(&self) -> Result<f64> {
        match self.item {
            Item::Value(Value::Integer(i)) => Ok(*i.value() as f64),
            Item::Value(Value::Float(x)) => {
                let x = *x.value();
                self.check(x.is_finite(), "expected a finite number")?;
                Ok(x)
            }
            _ => Err(self.expected("a number")),
        }
    }

    fn positive(&self) -> Result<f64> {
        let x = self.number()?;
        self.check(x > 0.0, "must be greater than 0")?;
        Ok(x)
    }

    fn non_negative(&self) -> Result<f64> {
        let x = self.number()?;
        self.check(x >= 0.0, "must not be negative")?;
        Ok(x)
    }

    /// A number in 0..=1.
    fn probability(&self) -> Result<f64> {
        let x = self.number()?;
        self.check((0.0..=1.0).contains(&x), "must be between 0 and 1")?;
        Ok(x)
    }

    /// An integer of at least `min`.
    fn count(&self, min: u64) -> Result<u64> {
        let Item::Value(Value::Integer(i)) = self.item else {
            return Err(self.expected("a whole number"));
        };
        match u64::try_from(*i.value()) {
            Ok(n) if n >= min => Ok(n),
            _ if min == 0 => Err(self.broken("must not be negative")),
            _ => Err(self.broken(format!("must be at least {min}"))),
        }
    }

    fn count_usize(&self, min: u64) -> Result<usize> {
        let n = self.count(min)?;
        usize::try_from(n).map_err(|_| self.err(format!("too large, got {n}")))
    }

    /// A duration string, in seconds.
    fn duration(&self) -> Result<f64> {
        match self.item {
            Item::Value(Value::String(s)) => {
                parse_duration(s.value()).map_err(|err| self.err(err.to_string()))
            }
            Item::Value(Value::Integer(_) | Value::Float(_)) => Err(self.err(format!(
                "expected a duration with a unit (like \"250us\", \"1.5s\" or \"10m\"), \
                 got {}: a plain number is not a duration",
                self.got()
            ))),
            _ => Err(self.expected("a duration (like \"250us\", \"1.5s\" or \"10m\")")),
        }
    }

    fn positive_duration(&self) -> Result<f64> {
        let seconds = self.duration()?;
        self.check(seconds > 0.0, "must be longer than 0")?;
        Ok(seconds)
    }

    /// A size string or a byte count, in bytes.
    fn size(&self) -> Result<u64> {
        match self.item {
            Item::Value(Value::String(s)) => {
                parse_size(s.value()).map_err(|err| self.err(err.to_string()))
            }
            Item::Value(Value::Integer(i)) => {
                u64::try_from(*i.value()).map_err(|_| self.broken("must not be negative"))
            }
            _ => {
                Err(self.expected("a size (like \"512B\", \"8KiB\" or \"1.5MiB\") or a byte count"))
            }
        }
    }

    fn positive_size(&self) -> Result<u64> {
        let bytes = self.size()?;
        self.check(bytes > 0, "must be greater than 0")?;
        Ok(bytes)
    }
}
