//! `brigade run`: a pipeline file run for real, watched in the dashboard or run
//! headless as the daemon, with the connectors' figures in the final report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{bail, Context, Result};
use brigade_connectors::pipeline::{
    self, Built, Figures, Overrides, PipelineSpec, SinkConfig, SourceConfig,
};
use brigade_controller::units::format_bytes;
use brigade_controller::Progress;
use brigade_daemon::{report_json, report_text, Daemon};
use brigade_runtime::Report;
use clap::Args;

use crate::live;
use crate::mode_args::{Mode, ModeArgs, ReportFormat};
use crate::policy_arg;

/// Run a pipeline file: read its source, run its stages, write its sink.
///
/// The file (see docs/pipelines.md) names a source (files by glob, or standard
/// input), stages (exec processes, field edits) and a sink (a file, standard output,
/// SQLite), with the runtime's settings, the dead-letter file and the checkpoint
/// directory. It is checked, and its environment too (as `brigade validate` does),
/// before anything runs. A file source with a checkpoint resumes where the last run
/// was acknowledged: after a crash, only what was in flight is read again.
///
/// On a terminal it opens the dashboard; with --headless, when standard output is not
/// a terminal, or when the pipeline reads standard input or writes standard output,
/// it runs as a daemon: progress on standard error, metrics over HTTP, SIGINT/SIGTERM
/// drain and exit with the final report.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file.
    #[arg(value_name = "PIPELINE.toml")]
    pipeline: PathBuf,

    #[command(flatten)]
    mode: ModeArgs,
}

/// A `brigade run` whose file parsed and whose flags agree.
#[derive(Debug)]
pub struct RunConfig {
    spec: PipelineSpec,
    overrides: Overrides,
    mode: Mode,
    report: ReportFormat,
}

impl RunArgs {
    /// Reads and checks the pipeline file and the flags, before anything runs.
    pub fn into_config(self) -> Result<RunConfig> {
        let spec = pipeline::load(&self.pipeline).map_err(|errors| {
            anyhow::anyhow!(
                "{errors}\n{}: {} problem(s); nothing ran",
                self.pipeline.display(),
                errors.0.len()
            )
        })?;
        if let Some(policy) = &self.mode.policy {
            let pipeline = format!("pipeline `{}`", spec.name);
            policy_arg::check_stages(policy, &pipeline, &stage_names(&spec))?;
        }
        let mut mode = self.mode.mode()?;
        let streams = matches!(spec.source.config, SourceConfig::Stdin(_))
            || matches!(spec.sink.config, SinkConfig::Stdout(_));
        if streams {
            // The dashboard would share the terminal with the data.
            mode.headless = true;
        }
        Ok(RunConfig {
            overrides: Overrides {
                policy: self.mode.policy.clone(),
                tick: self.mode.tick,
            },
            spec,
            mode,
            report: self.mode.report,
        })
    }
}

/// The runtime's stages of `spec`, in order: the decode (or partitioned read) stage,
/// the file's stages and the sink.
fn stage_names(spec: &PipelineSpec) -> Vec<&str> {
    std::iter::once(spec.first_stage_name())
        .chain(spec.stages.iter().map(|stage| stage.name.as_str()))
        .chain([spec.sink.name.as_str()])
        .collect()
}

/// Checks the environment, runs the pipeline to its end (or the operator's drain) and
/// prints the report.
pub fn run(config: RunConfig) -> Result<ExitCode> {
    let problems = pipeline::check_environment(&config.spec);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        bail!(
            "{}: {} problem(s) in the environment; nothing ran",
            config.spec.path.display(),
            problems.len()
        );
    }
    let Built {
        pipeline,
        pins,
        figures,
    } = pipeline::build(&config.spec, &config.overrides)?;
    let (report, progress) = if config.mode.headless {
        brigade_daemon::init_tracing();
        let daemon = Daemon::new(&config.mode.daemon)?;
        let running = pipeline.start()?;
        for pin in pins {
            running.monitor().apply(pin);
        }
        let outcome = daemon.run(running);
        (outcome.report, outcome.progress)
    } else {
        let running = pipeline.start()?;
        for pin in pins {
            running.monitor().apply(pin);
        }
        let policy = config
            .overrides
            .policy
            .as_deref()
            .unwrap_or(&config.spec.runtime.policy);
        let Some(watched) = live::watch(running, format!("{} · {policy}", config.spec.name))?
        else {
            return Ok(ExitCode::FAILURE);
        };
        let progress = watched
            .last
            .and_then(|snapshot| snapshot.global.source.progress);
        (watched.report, progress)
    };
    print_report(&config, &report, progress.as_ref(), &figures)?;
    for failure in &report.failures {
        eprintln!("error: {failure}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(
    config: &RunConfig,
    report: &Report,
    progress: Option<&Progress>,
    figures: &Figures,
) -> Result<()> {
    let spec = &config.spec;
    let text = match config.report {
        ReportFormat::Json => {
            let mut object: serde_json::Value =
                serde_json::from_str(&report_json(report, progress))
                    .context("the report is JSON")?;
            object["pipeline"] = spec.name.clone().into();
            object["connectors"] = connectors_json(spec, figures);
            format!("{object}\n")
        }
        ReportFormat::Text => format!(
            "{}\n{}",
            report_text(report, progress),
            connectors_text(spec, figures)
        ),
    };
    // A stdout sink's records own standard output: the report goes beside the
    // progress lines, so that `brigade run … > out.jsonl` keeps only records.
    let written = match spec.sink.config {
        SinkConfig::Stdout(_) => std::io::stderr().write_all(text.as_bytes()),
        _ => std::io::stdout().write_all(text.as_bytes()),
    };
    written.context("cannot write the report")
}

/// The connectors' figures as JSON: source, sink, dead letters, checkpoint.
fn connectors_json(spec: &PipelineSpec, figures: &Figures) -> serde_json::Value {
    let mut source = serde_json::json!({ "type": spec.source.config.type_name() });
    if let Some(files) = &figures.files {
        source["files_total"] = files.files_total.load(Relaxed).into();
        source["files_read"] = files.files_read.load(Relaxed).into();
        source["files_skipped"] = files.files_skipped.load(Relaxed).into();
        source["bytes_read"] = files.bytes_read.load(Relaxed).into();
        source["records"] = files.records.load(Relaxed).into();
        source["unreadable"] = files.unreadable.load(Relaxed).into();
        source["acknowledged"] = files.acked.load(Relaxed).into();
    }
    let dead_letters = figures.dead_letter_counts();
    serde_json::json!({
        "source": source,
        "sink": {
            "type": spec.sink.config.type_name(),
            "written": figures.written.load(Relaxed),
        },
        "dead_letters": {
            "file": figures.dead_letter_file.as_ref().map(|p| p.display().to_string()),
            "by_cause": dead_letters,
        },
        "checkpoint": figures.checkpoint.as_ref().map(|p| p.display().to_string()),
        "checkpoint_error": figures.files.as_ref().and_then(|f| f.last_checkpoint_error()),
    })
}

/// The connectors' figures as lines under the report.
fn connectors_text(spec: &PipelineSpec, figures: &Figures) -> String {
    let mut lines = Vec::new();
    match &figures.files {
        Some(files) => lines.push(format!(
            "source        {}: {} of {} files read ({} skipped as read before), {} read, {} \
             records, {} unreadable",
            spec.source.config.type_name(),
            files.files_read.load(Relaxed),
            files.files_total.load(Relaxed),
            files.files_skipped.load(Relaxed),
            format_bytes(files.bytes_read.load(Relaxed)),
            files.records.load(Relaxed),
            files.unreadable.load(Relaxed),
        )),
        None => lines.push(format!("source        {}", spec.source.config.type_name())),
    }
    lines.push(format!(
        "sink          {} `{}`: {} written",
        spec.sink.config.type_name(),
        spec.sink.name,
        figures.written.load(Relaxed)
    ));
    let counts = figures.dead_letter_counts();
    let causes = if counts.is_empty() {
        "none".to_owned()
    } else {
        counts
            .iter()
            .map(|(cause, count)| format!("{cause} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &figures.dead_letter_file {
        Some(path) => lines.push(format!("dead letters  {}: {causes}", path.display())),
        None => lines.push("dead letters  kept in this report (no [dead_letter] file)".into()),
    }
    if let Some(path) = &figures.checkpoint {
        let acked = figures.files.as_ref().map_or(0, |f| f.acked.load(Relaxed));
        lines.push(format!(
            "checkpoint    {}: acknowledged through record {acked}",
            path.display()
        ));
    }
    if let Some(error) = figures
        .files
        .as_ref()
        .and_then(|f| f.last_checkpoint_error())
    {
        lines.push(format!("checkpoint    last write failed: {error}"));
    }
    lines.join("\n") + "\n"
}
