//! The environment a pipeline needs, checked before it runs: what `brigade validate`
//! reports after the file itself.

use std::fs::OpenOptions;
use std::path::Path;

use super::spec::{PipelineSpec, SinkConfig, SourceConfig, StageKind};
use crate::file::CheckpointStore;
use crate::Problem;

/// Every problem of `spec`'s environment, one per line to show: unreadable inputs,
/// missing programs, unwritable outputs and checkpoint directories.
pub fn check_environment(spec: &PipelineSpec) -> Vec<Problem> {
    let mut problems = connector_checks(spec);
    if let Some(checkpoint) = &spec.checkpoint {
        let dir = spec.base.join(&checkpoint.dir);
        let found = checkpoint_dir(&dir);
        if found.is_empty() && dir.exists() {
            // Writable: now the checkpoints already there must read.
            problems.extend(CheckpointStore::check_dir(&dir));
        }
        problems.extend(found);
    }
    problems
}

/// The connectors' own checks, part by part in pipeline order: the source's, each
/// exec stage's, the sink's and the dead-letter file's `check(&self, base)`. Those are
/// written in the connectors' modules; this is the one place that calls them (the
/// `fields` stage has no environment to check).
fn connector_checks(spec: &PipelineSpec) -> Vec<Problem> {
    let base = &spec.base;
    let mut problems = match &spec.source.config {
        SourceConfig::File(config) => config.check(base),
        SourceConfig::Stdin(_) => Vec::new(),
    };
    for stage in &spec.stages {
        if let StageKind::Exec(config) = &stage.kind {
            problems.extend(config.check(base).into_iter().map(|problem| Problem {
                part: format!("stage.{}", stage.name),
                ..problem
            }));
        }
    }
    problems.extend(match &spec.sink.config {
        SinkConfig::File(config) => config.check(base),
        SinkConfig::Stdout(_) => Vec::new(),
        SinkConfig::Sqlite(config) => config.check(base),
        SinkConfig::Postgres(config) => config.check(),
        SinkConfig::Http(config) => config.check(),
    });
    if let Some(config) = &spec.dead_letter {
        problems.extend(config.check(base));
    }
    problems
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::pipeline::parse;

    /// A pipeline reading `in/a.jsonl` (created) under `dir`, checkpointed in
    /// `checkpoint_dir`.
    fn with_checkpoint(dir: &Path, checkpoint_dir: &str) -> PipelineSpec {
        std::fs::create_dir_all(dir.join("in")).unwrap();
        std::fs::write(dir.join("in/a.jsonl"), "{}\n").unwrap();
        let text = format!(
            "[source]\ntype = \"file\"\npath = \"in/*.jsonl\"\nformat = \"jsonl\"\n\
             [sink]\ntype = \"stdout\"\n[checkpoint]\ndir = \"{checkpoint_dir}\"\n"
        );
        parse(&text, &dir.join("p.toml")).unwrap()
    }

    fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        entries
    }

    #[test]
    fn an_existing_or_creatable_checkpoint_dir_passes_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        assert_eq!(check_environment(&with_checkpoint(dir.path(), "state")), []);
        assert_eq!(
            entries(&dir.path().join("state")),
            Vec::<std::path::PathBuf>::new()
        );

        // Relative to the pipeline file's directory, and not created by the check.
        assert_eq!(
            check_environment(&with_checkpoint(dir.path(), "new/deeper")),
            []
        );
        assert_eq!(
            entries(dir.path()),
            [dir.path().join("in"), dir.path().join("state")]
        );
    }

    #[test]
    fn a_checkpoint_dir_under_a_file_is_a_problem_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taken"), "x").unwrap();
        let problems = check_environment(&with_checkpoint(dir.path(), "taken/state"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].part, "checkpoint");
        let taken = dir.path().join("taken");
        assert_eq!(
            problems[0].message,
            format!(
                "{} is not a directory, so checkpoints cannot be kept in {}",
                taken.display(),
                taken.join("state").display()
            )
        );
    }

    #[test]
    fn a_pipeline_without_checkpoints_has_no_checkpoint_problem() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[source]\ntype = \"stdin\"\nformat = \"lines\"\n[sink]\ntype = \"stdout\"\n";
        let spec = parse(text, &dir.path().join("p.toml")).unwrap();
        assert_eq!(check_environment(&spec), []);
    }
}
