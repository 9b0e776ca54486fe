//! One worker's exec process and the call that runs a record through it.

use std::path::Path;
use std::time::Duration;

use super::answer::{self, Answer};
use super::launch::Launch;
use super::process::{describe, Line, Process};
use super::{ExecConfig, ExecError, ExecFailure};
use crate::Record;

/// How long a record may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a process that closed its standard output has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for the last of a dead process's standard error.
const TAIL_WAIT: Duration = Duration::from_millis(200);

/// One worker's long-lived process. Dropping it kills and reaps the process.
#[derive(Debug)]
pub struct ExecWorker {
    launch: Launch,
    timeout: Duration,
    process: Option<Process>,
}

impl ExecWorker {
    /// Starts the process `config` describes, resolved against `base` (the pipeline
    /// file's directory).
    pub fn start(config: &ExecConfig, base: &Path) -> Result<ExecWorker, ExecError> {
        let launch = Launch::resolve(config, base)?;
        let process = launch.spawn()?;
        Ok(ExecWorker {
            launch,
            timeout: config.timeout.map_or(DEFAULT_TIMEOUT, |span| span.0),
            process: Some(process),
        })
    }

    /// Runs `record` through the process: its outputs (zero, one or many), each with
    /// the record's origin, or the record handed back with why it failed. A process
    /// that exits or does not answer in time is killed and restarted. The failure is
    /// boxed: it carries the whole record, and the happy path should not pay for it.
    pub fn call(&mut self, record: Record) -> Result<Vec<Record>, Box<ExecFailure>> {
        let (timeout, max_answer) = (self.timeout, self.launch.max_answer());
        let process = match self.ready() {
            Ok(process) => process,
            Err(error) => {
                return Err(Box::new(ExecFailure {
                    record,
                    error,
                    restarted: false,
                }))
            }
        };
        let mut line = record.value.to_string().into_bytes();
        line.push(b'\n');
        process.send(line);
        let (error, restarted) = match process.receive(timeout) {
            Some(Line::Text(text)) => match answer::parse(&text) {
                Ok(Answer::Outputs(values)) => {
                    let origin = &record.origin;
                    return Ok(values
                        .into_iter()
                        .map(|value| Record {
                            value,
                            origin: origin.clone(),
                        })
                        .collect());
                }
                Ok(Answer::Error(why)) => (ExecError::Answered(why), false),
                Ok(Answer::Retry(why)) => (ExecError::Retry(why), false),
                Err(reason) => {
                    let excerpt = answer::excerpt(&text);
                    (ExecError::BadAnswer { reason, excerpt }, false)
                }
            },
            Some(Line::TooLong) => (ExecError::AnswerTooLong { limit: max_answer }, false),
            Some(Line::End) => {
                let how = match process.wait_exit(EXIT_GRACE) {
                    Some(status) => describe(status),
                    None => "closed its standard output (killed)".into(),
                };
                process.kill();
                let stderr = process.stderr_tail(TAIL_WAIT);
                (ExecError::Exited { how, stderr }, self.restart())
            }
            None => {
                process.kill();
                let stderr = process.stderr_tail(TAIL_WAIT);
                (
                    ExecError::Timeout {
                        after: timeout,
                        stderr,
                    },
                    self.restart(),
                )
            }
        };
        Err(Box::new(ExecFailure {
            record,
            error,
            restarted,
        }))
    }

    /// The process, fit for a new record: one that ended or wrote a stray line since
    /// the last answer is replaced first.
    fn ready(&mut self) -> Result<&mut Process, ExecError> {
        if self.process.as_mut().is_some_and(Process::is_spent) {
            self.process = None;
        }
        match &mut self.process {
            Some(process) => Ok(process),
            slot @ None => Ok(slot.insert(self.launch.spawn_with_backoff()?)),
        }
    }

    /// Replaces the process at once; false if no new one would start (the next call
    /// tries again).
    fn restart(&mut self) -> bool {
        self.process = None;
        self.process = self.launch.spawn_with_backoff().ok();
        self.process.is_some()
    }
}
