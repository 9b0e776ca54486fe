//! `brigade validate`: checks a pipeline file, then the environment it needs, and says
//! each problem in one line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use brigade_connectors::pipeline::{self, PipelineSpec};
use clap::Args;

/// Check a pipeline file, then its environment, and print each problem in one line.
///
/// The file: every key known, every value of the right type and unit, every
/// `${VARIABLE}` set (`FILE:LINE:COLUMN: KEY: problem`). The environment: inputs
/// readable, programs found, outputs and the checkpoint directory writable
/// (`PART: problem`). Exits 0 if all is well, 1 if there is a problem.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file (see docs/pipelines.md).
    #[arg(value_name = "PIPELINE.toml")]
    pipeline: PathBuf,

    /// Check only the file, not the environment (say, on a machine other than the
    /// one it will run on).
    #[arg(long)]
    no_environment: bool,
}

/// Prints every problem on standard output, or one line saying the pipeline is ok.
pub fn run(args: &ValidateArgs) -> ExitCode {
    let spec = match pipeline::load(&args.pipeline) {
        Ok(spec) => spec,
        Err(errors) => {
            for error in &errors.0 {
                println!("{error}");
            }
            return ExitCode::FAILURE;
        }
    };
    if !args.no_environment {
        let problems = pipeline::check_environment(&spec);
        if !problems.is_empty() {
            for problem in &problems {
                println!("{problem}");
            }
            return ExitCode::FAILURE;
        }
    }
    println!("{}", summary(&args.pipeline, &spec));
    ExitCode::SUCCESS
}

/// `orders.toml: ok (source file, 2 stages, sink sqlite)`.
fn summary(path: &Path, spec: &PipelineSpec) -> String {
    let stages = match spec.stages.len() {
        1 => "1 stage".to_owned(),
        count => format!("{count} stages"),
    };
    format!(
        "{}: ok (source {}, {stages}, sink {})",
        path.display(),
        spec.source.config.type_name(),
        spec.sink.config.type_name()
    )
}
