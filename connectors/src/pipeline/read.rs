//! Reading a pipeline file's text into a [`PipelineSpec`].
//!
//! The TOML is parsed with spans ([`DeTable`]), so that every error names its line,
//! column and key. `${NAME}` references are replaced in the parsed strings. Each table
//! has its keys checked against the ones it may hold; a connector's settings are split
//! from the runtime keys and handed to its configuration struct through serde, its keys
//! checked first against the struct's fields. Errors are collected, not stopped at.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use brigade_controller::units::{parse_duration, parse_size};
use serde::de::DeserializeOwned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::build::DECODE_STAGE;
use super::error::{Errors, PipelineError};
use super::interpolate::{interpolate, Lookup};
use super::probe::fields_of;
use super::spec::{
    Attempts, CheckpointSettings, PipelineSpec, RetrySettings, RuntimeSettings, SinkConfig,
    SinkSpec, SourceConfig, SourceSpec, StageKind, StageSettings, StageSpec,
};
use super::suggest::did_you_mean;
use crate::file::Format;

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

const ROOT_KEYS: &[&str] = &[
    "name",
    "runtime",
    "source",
    "stage",
    "sink",
    "dead_letter",
    "checkpoint",
];
const RUNTIME_KEYS: &[&str] = &[
    "memory_budget",
    "tick",
    "policy",
    "serial_threshold",
    "max_workers",
    "queue_capacity",
    "retry",
    "spill",
    "spill_dir",
];
const RETRY_KEYS: &[&str] = &["attempts", "initial_backoff", "max_backoff"];
const STAGE_KEYS: &[&str] = &[
    "name",
    "type",
    "workers",
    "pin",
    "queue_capacity",
    "concurrency_limit",
    "rate_limit",
];
const SINK_KEYS: &[&str] = &[
    "name",
    "type",
    "workers",
    "pin",
    "queue_capacity",
    "concurrency_limit",
    "rate_limit",
    "batch_size",
];
const WORKERS_KEYS: &[&str] = &["min", "max", "initial"];
const CHECKPOINT_KEYS: &[&str] = &["dir", "interval"];
const SOURCE_TYPES: &[&str] = &["file", "stdin", "postgres", "redis"];
const STAGE_TYPES: &[&str] = &["exec", "fields"];
const SINK_TYPES: &[&str] = &[
    "file",
    "stdout",
    "sqlite",
    "http",
    "postgres",
    "redis_stream",
    "redis_hash",
];

/// The runtime's own default for a stage's most workers.
const DEFAULT_MAX_WORKERS: usize = 64;

/// Parses `text`, the pipeline file at `path`, reading `${NAME}` from `lookup`.
pub(crate) fn read(
    text: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Lookup,
) -> Result<PipelineSpec, Errors> {
    let file = path.display().to_string();
    let mut reader = Reader {
        text,
        file: &file,
        errors: Vec::new(),
    };
    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for error in syntax {
            let span = error.span().unwrap_or(0..0);
            let message = error.message().trim().replace('\n', "; ");
            reader.push(span, None, message);
        }
        return Err(reader.finish());
    }
    interpolate_table(&mut reader, root.get_mut(), "", lookup);
    let spec = reader.pipeline(&root, path);
    match spec {
        Some(spec) if reader.errors.is_empty() => Ok(spec),
        _ => Err(reader.finish()),
    }
}

/// Replaces `${NAME}` in every string under `table`, whose key path is `path`.
fn interpolate_table(
    reader: &mut Reader,
    table: &mut DeTable,
    path: &str,
    lookup: &dyn Fn(&str) -> Lookup,
) {
    for (key, value) in table.iter_mut() {
        let path = join(path, key.get_ref());
        interpolate_value(reader, value, &path, lookup);
    }
}

fn interpolate_value(
    reader: &mut Reader,
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Lookup,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(text) => match interpolate(text, lookup) {
            Ok(Some(replaced)) => *text = DeString::Owned(replaced),
            Ok(None) => {}
            Err(message) => reader.push(span, Some(path.to_owned()), message),
        },
        DeValue::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let item_path = match stage_name(path, item) {
                    Some(name) => join("stage", &name),
                    None => format!("{path}[{index}]"),
                };
                interpolate_value(reader, item, &item_path, lookup);
            }
        }
        DeValue::Table(table) => interpolate_table(reader, table, path, lookup),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_) => {}
    }
}

/// The name of `item` when it is a `[[stage]]` entry named without `${`, so that its
/// errors name it as the others do.
fn stage_name(path: &str, item: &Value) -> Option<String> {
    if path != "stage" {
        return None;
    }
    let name = item.get_ref().as_table()?.get("name")?.get_ref().as_str()?;
    (!name.contains('$') && !name.trim().is_empty()).then(|| name.to_owned())
}

/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// One key of a table: its path, the span of its name, and its value.
struct Field<'a, 'i> {
    path: String,
    key: &'a Key<'i>,
    value: &'a Value<'i>,
}

impl<'a, 'i> Field<'a, 'i> {
    fn get(table: &'a DeTable<'i>, path: &str, key: &str) -> Option<Self> {
        table.get_key_value(key).map(|(name, value)| Field {
            path: join(path, key),
            key: name,
            value,
        })
    }
}

/// The file being read and the errors found so far, each with its byte offset.
struct Reader<'t> {
    text: &'t str,
    file: &'t str,
    errors: Vec<(usize, PipelineError)>,
}

impl<'t> Reader<'t> {
    /// The 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        (
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    fn push(&mut self, span: Range<usize>, key: Option<String>, message: impl Into<String>) {
        let error = PipelineError {
            file: self.file.to_owned(),
            at: Some(self.position(span.start)),
            key,
            message: message.into(),
        };
        self.errors.push((span.start, error));
    }

    fn error(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.push(span, Some(key.to_owned()), message);
    }

    /// The errors in the order of the file.
    fn finish(self) -> Errors {
        let mut errors = self.errors;
        errors.sort_by_key(|(offset, _)| *offset);
        Errors(errors.into_iter().map(|(_, error)| error).collect())
    }

    /// How `value` is written, for "got …" (kinds for long ones).
    fn got(&self, value: &Value) -> String {
        match value.get_ref() {
            DeValue::Table(_) => "a table".to_owned(),
            DeValue::Array(_) => "an array".to_owned(),
            _ => match self.text.get(value.span()) {
                Some(written) if written.chars().count() <= 40 && !written.contains('\n') => {
                    written.to_owned()
                }
                _ => format!("a {}", value.get_ref().type_str()),
            },
        }
    }

    fn expected(&mut self, field: &Field, what: &str) {
        let message = format!("expected {what}, got {}", self.got(field.value));
        self.error(field.value.span(), &field.path, message);
    }

    /// Reports each key of `table` not in `allowed`.
    fn allow(&mut self, table: &DeTable, path: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let message = format!(
                    "unknown key `{}`; expected one of: {}{}",
                    key.get_ref(),
                    allowed.join(", "),
                    did_you_mean(key.get_ref(), allowed)
                );
                self.error(key.span(), place(path), message);
            }
        }
    }
}

/// A table's path in messages: `top level` for the file's own keys.
fn place(path: &str) -> &str {
    if path.is_empty() {
        "top level"
    } else {
        path
    }
}

/// The value readers: each reports what is wrong and returns `None`.
impl Reader<'_> {
    fn table<'a, 'i>(&mut self, field: &Field<'a, 'i>) -> Option<&'a DeTable<'i>> {
        match field.value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.expected(field, "a table");
                None
            }
        }
    }

    fn string<'a>(&mut self, field: &Field<'a, '_>) -> Option<&'a str> {
        match field.value.get_ref() {
            DeValue::String(text) => Some(text),
            _ => {
                self.expected(field, "a string");
                None
            }
        }
    }

    /// A string that is not blank.
    fn name<'a>(&mut self, field: &Field<'a, '_>) -> Option<&'a str> {
        let name = self.string(field)?;
        if name.trim().is_empty() {
            self.expected(field, "a name that is not blank");
            return None;
        }
        Some(name)
    }

    /// A whole number at least `least`.
    fn count(&mut self, field: &Field, least: usize) -> Option<usize> {
        let number = match field.value.get_ref() {
            DeValue::Integer(_) => deserialize::<i128>(field.value).ok(),
            _ => None,
        };
        match number.and_then(|number| usize::try_from(number).ok()) {
            Some(count) if count >= least => Some(count),
            _ => {
                self.expected(field, &format!("a whole number, at least {least}"));
                None
            }
        }
    }

    /// A number above zero.
    fn positive(&mut self, field: &Field) -> Option<f64> {
        let number = match field.value.get_ref() {
            DeValue::Integer(_) | DeValue::Float(_) => deserialize::<f64>(field.value).ok(),
            _ => None,
        };
        match number {
            Some(number) if number > 0.0 && number.is_finite() => Some(number),
            _ => {
                self.expected(field, "a number above zero");
                None
            }
        }
    }

    /// A duration with its unit (`"250ms"`), above zero.
    fn duration(&mut self, field: &Field) -> Option<Duration> {
        let DeValue::String(text) = field.value.get_ref() else {
            self.expected(field, "a duration with its unit, like \"250ms\" or \"2s\"");
            return None;
        };
        match parse_duration(text) {
            Ok(seconds) if seconds > 0.0 => Some(Duration::from_secs_f64(seconds)),
            Ok(_) => {
                self.expected(field, "a duration above zero");
                None
            }
            Err(err) => {
                self.error(field.value.span(), &field.path, err.to_string());
                None
            }
        }
    }

    /// A size (`"64MiB"`) or a whole number of bytes, above zero.
    fn size(&mut self, field: &Field) -> Option<u64> {
        let bytes = match field.value.get_ref() {
            DeValue::String(text) => parse_size(text).map_err(|err| err.to_string()),
            DeValue::Integer(_) => deserialize::<u64>(field.value)
                .map_err(|_| format!("expected a size above zero, got {}", self.got(field.value))),
            _ => Err(format!(
                "expected a size such as \"64MiB\" or a whole number of bytes, got {}",
                self.got(field.value)
            )),
        };
        match bytes {
            Ok(0) => {
                self.expected(field, "a size above zero");
                None
            }
            Ok(bytes) => Some(bytes),
            Err(message) => {
                self.error(field.value.span(), &field.path, message);
                None
            }
        }
    }

    /// `key` of `table` read by `read`; `None` when absent or wrong.
    fn optional<'a, 'i, T>(
        &mut self,
        table: &'a DeTable<'i>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &Field<'a, 'i>) -> Option<T>,
    ) -> Option<T> {
        let field = Field::get(table, path, key)?;
        read(self, &field)
    }

    /// `key` of `table` read by `read`; an error at `span` (the table) when absent.
    fn required<'a, 'i, T>(
        &mut self,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &Field<'a, 'i>) -> Option<T>,
    ) -> Option<T> {
        match Field::get(table, path, key) {
            Some(field) => read(self, &field),
            None => {
                let message = if path.is_empty() {
                    format!("missing the [{key}] section")
                } else {
                    format!("missing key `{key}`")
                };
                self.error(span, place(path), message);
                None
            }
        }
    }
}

/// `value` through serde, as a connector's configuration or a number.
fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, toml::de::Error> {
    T::deserialize(ValueDeserializer::from(value.clone()))
}

/// The sections of the file.
impl Reader<'_> {
    fn pipeline(&mut self, root: &Spanned<DeTable>, path: &Path) -> Option<PipelineSpec> {
        let whole = root.span();
        let root = root.get_ref();
        self.allow(root, "", ROOT_KEYS);
        let name = match Field::get(root, "", "name") {
            Some(field) => self.name(&field).map(str::to_owned),
            None => Some(
                path.file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "pipeline".to_owned()),
            ),
        };
        let runtime = match Field::get(root, "", "runtime") {
            Some(field) => self.table(&field).and_then(|table| self.runtime(table)),
            None => Some(RuntimeSettings::default()),
        };
        let max_workers = runtime
            .as_ref()
            .and_then(|runtime| runtime.max_workers)
            .unwrap_or(DEFAULT_MAX_WORKERS);
        let source = self.required(
            root,
            whole.start..whole.start,
            "",
            "source",
            |reader, field| reader.source(field),
        );
        let stages = self.stages(root, max_workers);
        let sink = self.required(
            root,
            whole.start..whole.start,
            "",
            "sink",
            |reader, field| reader.sink(field, max_workers),
        );
        let dead_letter = match Field::get(root, "", "dead_letter") {
            Some(field) => self
                .table(&field)
                .and_then(|table| {
                    self.connector(
                        field.value.span(),
                        table,
                        "dead_letter",
                        &[],
                        "`[dead_letter]`",
                    )
                })
                .map(Some),
            None => Some(None),
        };
        let checkpoint = match Field::get(root, "", "checkpoint") {
            Some(field) => self.checkpoint(&field).map(Some),
            None => Some(None),
        };
        let spec = PipelineSpec {
            name: name?,
            path: path.to_owned(),
            base: base_of(path),
            runtime: runtime?,
            source: source?,
            stages: stages?,
            sink: sink?,
            dead_letter: dead_letter?,
            checkpoint: checkpoint?,
        };
        self.check_whole(root, &spec);
        Some(spec)
    }

    fn runtime(&mut self, table: &DeTable) -> Option<RuntimeSettings> {
        let path = "runtime";
        self.allow(table, path, RUNTIME_KEYS);
        let errors = self.errors.len();
        let policy = match Field::get(table, path, "policy") {
            Some(field) => {
                self.string(&field)
                    .and_then(|policy| match brigade_controller::from_name(policy) {
                        Ok(_) => Some(policy.to_owned()),
                        Err(err) => {
                            self.error(field.value.span(), &field.path, err.to_string());
                            None
                        }
                    })
            }
            None => Some("adaptive".to_owned()),
        };
        let settings = RuntimeSettings {
            memory_budget: self.optional(table, path, "memory_budget", Self::size),
            tick: self.optional(table, path, "tick", Self::duration),
            policy: policy.unwrap_or_default(),
            serial_threshold: self.optional(table, path, "serial_threshold", Self::size),
            max_workers: self.optional(table, path, "max_workers", |r, f| r.count(f, 1)),
            queue_capacity: self.optional(table, path, "queue_capacity", |r, f| r.count(f, 1)),
            retry: match Field::get(table, path, "retry") {
                Some(field) => self.retry(&field).unwrap_or_default(),
                None => RetrySettings::default(),
            },
            spill: self.optional(table, path, "spill", Self::size),
            spill_dir: self.optional(table, path, "spill_dir", |reader, field| {
                reader.name(field).map(Into::into)
            }),
        };
        (self.errors.len() == errors).then_some(settings)
    }

    fn retry(&mut self, field: &Field) -> Option<RetrySettings> {
        let table = self.table(field)?;
        let path = field.path.as_str();
        self.allow(table, path, RETRY_KEYS);
        let defaults = RetrySettings::default();
        let attempts = self.optional(table, path, "attempts", |reader, field| {
            match field.value.get_ref() {
                DeValue::String(text) if text.as_ref() == "forever" => Some(Attempts::Forever),
                DeValue::Integer(_) => deserialize::<u32>(field.value)
                    .ok()
                    .filter(|&times| times >= 1)
                    .map(Attempts::Times)
                    .or_else(|| {
                        reader
                            .expected(field, "a whole number of calls, at least 1, or \"forever\"");
                        None
                    }),
                _ => {
                    reader.expected(field, "a whole number of calls, at least 1, or \"forever\"");
                    None
                }
            }
        });
        let initial_backoff = self.optional(table, path, "initial_backoff", Self::duration);
        let max_backoff = self.optional(table, path, "max_backoff", Self::duration);
        let retry = RetrySettings {
            attempts: attempts.unwrap_or(defaults.attempts),
            initial_backoff: initial_backoff.unwrap_or(defaults.initial_backoff),
            max_backoff: max_backoff.unwrap_or(defaults.max_backoff),
        };
        if retry.initial_backoff > retry.max_backoff {
            let at = Field::get(table, path, "max_backoff")
                .or_else(|| Field::get(table, path, "initial_backoff"))
                .map_or(field.value.span(), |field| field.value.span());
            self.error(
                at,
                path,
                format!(
                    "initial_backoff ({:?}) is longer than max_backoff ({:?}); expected \
                     initial_backoff ≤ max_backoff",
                    retry.initial_backoff, retry.max_backoff
                ),
            );
        }
        Some(retry)
    }

    fn source(&mut self, field: &Field) -> Option<SourceSpec> {
        let table = self.table(field)?;
        let path = "source";
        let span = field.value.span();
        let kind = self.type_of(table, span.clone(), path, "source", SOURCE_TYPES)?;
        let what = format!("a `{kind}` source");
        let config = match kind {
            "file" => SourceConfig::File(self.connector(span, table, path, &["type"], &what)?),
            "postgres" => {
                let config: crate::postgres::source::PgSourceConfig =
                    self.connector(span.clone(), table, path, &["type"], &what)?;
                if let Some((key, message)) = config.invalid() {
                    let at = Field::get(table, path, key).map_or(span, |f| f.value.span());
                    self.error(at, &join(path, key), message);
                    return None;
                }
                SourceConfig::Postgres(config)
            }
            "redis" => SourceConfig::Redis(Box::new(self.connector(
                span,
                table,
                path,
                &["type"],
                &what,
            )?)),
            _ => {
                let config: crate::stdin::StdinSourceConfig =
                    self.connector(span, table, path, &["type"], &what)?;
                if config.format == Format::Csv {
                    let at = Field::get(table, path, "format").map_or(0..0, |f| f.value.span());
                    self.error(
                        at,
                        "source.format",
                        "`csv` is for files; expected `lines` or `jsonl` for a `stdin` source",
                    );
                    return None;
                }
                SourceConfig::Stdin(config)
            }
        };
        Some(SourceSpec { config })
    }

    fn stages(&mut self, root: &DeTable, max_workers: usize) -> Option<Vec<StageSpec>> {
        let Some(field) = Field::get(root, "", "stage") else {
            return Some(Vec::new());
        };
        let DeValue::Array(entries) = field.value.get_ref() else {
            self.expected(&field, "an array of tables: one [[stage]] per stage");
            return None;
        };
        let mut stages = Some(Vec::new());
        for (index, entry) in entries.iter().enumerate() {
            let stage = self.stage(entry, index, max_workers);
            match (stages.as_mut(), stage) {
                (Some(stages), Some(stage)) => stages.push(stage),
                _ => stages = None,
            }
        }
        stages
    }

    fn stage(&mut self, entry: &Value, index: usize, max_workers: usize) -> Option<StageSpec> {
        let span = entry.span();
        let DeValue::Table(table) = entry.get_ref() else {
            let message = format!("expected a table, got {}", self.got(entry));
            self.error(span, &format!("stage[{index}]"), message);
            return None;
        };
        let named = Field::get(table, "", "name");
        let name = match &named {
            Some(field) => self.name(&Field {
                path: format!("stage[{index}].name"),
                key: field.key,
                value: field.value,
            }),
            None => {
                self.error(
                    span.clone(),
                    &format!("stage[{index}]"),
                    "missing key `name`",
                );
                None
            }
        };
        let path = match name {
            Some(name) => join("stage", name),
            None => format!("stage[{index}]"),
        };
        // The settings are read even when the connector's are wrong: every error at once.
        let kind = match self.type_of(table, span.clone(), &path, "stage", STAGE_TYPES) {
            Some("exec") => self
                .connector(span, table, &path, STAGE_KEYS, "an `exec` stage")
                .map(StageKind::Exec),
            Some(_) => self
                .connector(span, table, &path, STAGE_KEYS, "a `fields` stage")
                .map(StageKind::Fields),
            None => None,
        };
        let settings = self.settings(table, &path, max_workers);
        Some(StageSpec {
            name: name?.to_owned(),
            kind: kind?,
            settings: settings?,
        })
    }

    fn sink(&mut self, field: &Field, max_workers: usize) -> Option<SinkSpec> {
        let table = self.table(field)?;
        let path = "sink";
        let span = field.value.span();
        let name = match Field::get(table, path, "name") {
            Some(field) => self.name(&field).map(str::to_owned),
            None => Some("sink".to_owned()),
        };
        let config = match self.type_of(table, span.clone(), path, "sink", SINK_TYPES) {
            Some(kind) => {
                let what = format!("a `{kind}` sink");
                match kind {
                    "file" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::File),
                    "stdout" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::Stdout),
                    "http" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::Http),
                    "postgres" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::Postgres),
                    "redis_stream" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::RedisStream),
                    "redis_hash" => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::RedisHash),
                    _ => self
                        .connector(span, table, path, SINK_KEYS, &what)
                        .map(SinkConfig::Sqlite),
                }
            }
            None => None,
        };
        let batch_size = self.optional(table, path, "batch_size", |r, f| r.count(f, 1));
        let settings = self.settings(table, path, max_workers);
        Some(SinkSpec {
            name: name?,
            config: config?,
            settings: settings?,
            batch_size,
        })
    }

    /// The `type` of a source, stage or sink, one of `types`.
    fn type_of(
        &mut self,
        table: &DeTable,
        span: Range<usize>,
        path: &str,
        part: &str,
        types: &[&'static str],
    ) -> Option<&'static str> {
        let Some(field) = Field::get(table, path, "type") else {
            let message = format!("missing key `type`; expected one of: {}", types.join(", "));
            self.error(span, path, message);
            return None;
        };
        let written = self.string(&field)?;
        match types.iter().find(|kind| **kind == written) {
            Some(kind) => Some(kind),
            None => {
                let message = format!(
                    "unknown {part} type `{written}`; expected one of: {}",
                    types.join(", ")
                );
                self.error(field.value.span(), &field.path, message);
                None
            }
        }
    }

    /// A connector's settings: the keys of `table` but `runtime_keys`, checked against
    /// `T`'s fields, then deserialized. `what` names the connector (`a \`file\` sink`).
    fn connector<T: DeserializeOwned>(
        &mut self,
        span: Range<usize>,
        table: &DeTable,
        path: &str,
        runtime_keys: &[&str],
        what: &str,
    ) -> Option<T> {
        let mut settings = DeTable::new();
        for (key, value) in table.iter() {
            if !runtime_keys.contains(&key.get_ref().as_ref()) {
                settings.insert(key.clone(), value.clone());
            }
        }
        if let Some(fields) = fields_of::<T>() {
            let mut unknown = false;
            for (key, _) in settings.iter() {
                if fields.contains(&key.get_ref().as_ref()) {
                    continue;
                }
                unknown = true;
                let expected = if fields.is_empty() {
                    "it takes no settings".to_owned()
                } else {
                    format!("expected one of: {}", fields.join(", "))
                };
                let known: Vec<&str> = fields.iter().chain(runtime_keys).copied().collect();
                let message = format!(
                    "unknown key `{}` for {what}; {expected}{}",
                    key.get_ref(),
                    did_you_mean(key.get_ref(), &known)
                );
                self.error(key.span(), path, message);
            }
            if unknown {
                return None;
            }
        }
        let keys: Vec<(Range<usize>, Range<usize>, String)> = settings
            .iter()
            .map(|(key, value)| (key.span(), value.span(), key.get_ref().to_string()))
            .collect();
        match deserialize::<T>(&Spanned::new(span.clone(), DeValue::Table(settings))) {
            Ok(config) => Some(config),
            Err(err) => {
                let at = err.span().unwrap_or(span.clone());
                let culprit = keys.iter().find(|(key, value, _)| {
                    key.contains(&at.start) || value.contains(&at.start) || *value == at
                });
                let message = err.message().trim().replace('\n', "; ");
                let message = match message.strip_prefix("missing field ") {
                    Some(field) => format!("missing key {field} for {what}"),
                    None => message.replace("unknown variant", "unknown value"),
                };
                match culprit {
                    Some((_, value, key)) => self.error(value.clone(), &join(path, key), message),
                    None => self.error(span, path, message),
                }
                None
            }
        }
    }

    /// The runtime keys of a stage or the sink.
    fn settings(
        &mut self,
        table: &DeTable,
        path: &str,
        max_workers: usize,
    ) -> Option<StageSettings> {
        let errors = self.errors.len();
        let (mut min, mut max, mut initial) = (1, max_workers, None);
        if let Some(field) = Field::get(table, path, "workers") {
            if let Some(workers) = self.table(&field) {
                self.allow(workers, &field.path, WORKERS_KEYS);
                let path = field.path.as_str();
                min = self
                    .optional(workers, path, "min", |r, f| r.count(f, 1))
                    .unwrap_or(min);
                max = self
                    .optional(workers, path, "max", |r, f| r.count(f, 1))
                    .unwrap_or(max);
                initial = self.optional(workers, path, "initial", |r, f| r.count(f, 1));
                if min > max {
                    self.error(
                        field.value.span(),
                        path,
                        format!("min ({min}) is above max ({max}); expected min ≤ max"),
                    );
                }
                if let Some(initial) = initial.filter(|i| !(min..=max).contains(i)) {
                    self.error(
                        field.value.span(),
                        path,
                        format!(
                            "initial ({initial}) is outside min..=max ({min}..={max}); \
                             expected min ≤ initial ≤ max"
                        ),
                    );
                }
            }
        }
        let pin = self.optional(table, path, "pin", |reader, field| {
            let pin = reader.count(field, 1)?;
            if !(min..=max).contains(&pin) {
                let message =
                    format!("pin ({pin}) is outside the workers' min..=max ({min}..={max})");
                reader.error(field.value.span(), &field.path, message);
                return None;
            }
            Some(pin)
        });
        let settings = StageSettings {
            min,
            max,
            initial: initial.or(pin).unwrap_or(min),
            pin,
            queue_capacity: self.optional(table, path, "queue_capacity", |r, f| r.count(f, 1)),
            concurrency_limit: self
                .optional(table, path, "concurrency_limit", |r, f| r.count(f, 1)),
            rate_limit: self.optional(table, path, "rate_limit", Self::positive),
        };
        (self.errors.len() == errors).then_some(settings)
    }

    fn checkpoint(&mut self, field: &Field) -> Option<CheckpointSettings> {
        let table = self.table(field)?;
        let path = "checkpoint";
        self.allow(table, path, CHECKPOINT_KEYS);
        let dir = self.required(table, field.value.span(), path, "dir", |reader, field| {
            reader.name(field).map(Into::into)
        });
        let interval = match Field::get(table, path, "interval") {
            Some(field) => self.duration(&field),
            None => Some(Duration::from_secs(1)),
        };
        Some(CheckpointSettings {
            dir: dir?,
            interval: interval?,
        })
    }

    /// What spans sections: unique names, a `static:` policy's counts, checkpoints
    /// only with files.
    fn check_whole(&mut self, root: &DeTable, spec: &PipelineSpec) {
        let entries: Vec<&Value> = match root.get("stage").map(Spanned::get_ref) {
            Some(DeValue::Array(entries)) => entries.iter().collect(),
            _ => Vec::new(),
        };
        let first = spec.first_stage_name();
        for (index, stage) in spec.stages.iter().enumerate() {
            let earlier = spec.stages[..index].iter().any(|s| s.name == stage.name);
            let decode = stage.name == first;
            if earlier || decode || stage.name == spec.sink.name {
                let at = entries
                    .get(index)
                    .and_then(|entry| entry.get_ref().as_table())
                    .and_then(|table| table.get("name"))
                    .map_or(0..0, Spanned::span);
                let other = if decode && first == DECODE_STAGE {
                    "the stage that parses what the source reads"
                } else if decode {
                    "the partitioned source's read stage"
                } else if earlier {
                    "another stage"
                } else {
                    "the sink"
                };
                self.error(
                    at,
                    &join("stage", &stage.name),
                    format!(
                        "the name `{}` is already {other}'s; expected names unique among \
                         the stages and the sink",
                        stage.name
                    ),
                );
            }
        }
        if spec.sink.name == first {
            let at = root.get("sink").map_or(0..0, Spanned::span);
            let role = if first == DECODE_STAGE {
                "parses what the source reads"
            } else {
                "reads the source's pages"
            };
            self.error(
                at,
                "sink.name",
                format!("`{first}` is the stage that {role}; expected another name"),
            );
        }
        if let Some(counts) = spec.runtime.policy.strip_prefix("static:") {
            let given = counts.split(',').count();
            let names: Vec<&str> = std::iter::once(first)
                .chain(spec.stages.iter().map(|stage| stage.name.as_str()))
                .chain([spec.sink.name.as_str()])
                .collect();
            let parts = names.len();
            if given > 1 && given != parts {
                let at = runtime_key(root, "policy");
                self.error(
                    at,
                    "runtime.policy",
                    format!(
                        "`{}` gives {given} worker counts, and the pipeline has {parts} \
                         stages ({}); expected one count per stage, in order",
                        spec.runtime.policy,
                        names.join(", ")
                    ),
                );
            }
        }
        if let (Some(_), SourceConfig::Postgres(config)) = (&spec.checkpoint, &spec.source.config) {
            if config.key.is_none() {
                let at = root.get("checkpoint").map_or(0..0, Spanned::span);
                self.error(
                    at,
                    "checkpoint",
                    "a `postgres` source without `key` cannot resume (rows have no order \
                     to continue in); expected `source.key` or no [checkpoint] section",
                );
            }
        }
        let resumable = matches!(
            spec.source.config,
            SourceConfig::File(_) | SourceConfig::Postgres(_)
        );
        if spec.checkpoint.is_some() && !resumable {
            let at = root.get("checkpoint").map_or(0..0, Spanned::span);
            self.error(
                at,
                "checkpoint",
                format!(
                    "checkpoints need a `file` or `postgres` source (a `{}` source cannot be read again \
                     from a position); expected no [checkpoint] section",
                    spec.source.config.type_name()
                ),
            );
        }
    }
}

/// The span of `[runtime]`'s `key` value.
fn runtime_key(root: &DeTable, key: &str) -> Range<usize> {
    root.get("runtime")
        .and_then(|runtime| runtime.get_ref().as_table())
        .and_then(|table| table.get(key))
        .map_or(0..0, Spanned::span)
}

/// The directory relative paths resolve against: the file's own.
fn base_of(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => ".".into(),
    }
}
