//! The exec stage's healthcheck: the program resolves, is executable, and starts.

use std::path::Path;
use std::time::Duration;

use super::launch::Launch;
use super::process::describe;
use super::ExecConfig;
use crate::Problem;

/// How long a started program is watched for an early failure (interpreters on a busy
/// machine take a while to get to their first error).
const START_WAIT: Duration = Duration::from_secs(2);

impl ExecConfig {
    /// What stops this stage from starting, relative to `base` (the pipeline file's
    /// directory): a missing working directory, a program not found or not executable,
    /// or one that fails as soon as it starts (it is started with its standard input
    /// closed, watched briefly, and killed). Part `stages`; a caller that knows the
    /// stage's name says `stages.<name>`.
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        match self.find_problem(base) {
            Ok(()) => Vec::new(),
            Err(message) => vec![Problem {
                part: "stages".into(),
                message,
            }],
        }
    }

    fn find_problem(&self, base: &Path) -> Result<(), String> {
        let launch = Launch::resolve(self, base).map_err(|error| error.to_string())?;
        let mut process = launch.spawn().map_err(|error| error.to_string())?;
        process.close_input();
        match process.wait_exit(START_WAIT) {
            Some(status) if !status.success() => {
                process.kill();
                Err(format!(
                    "`{}` {} as it started; stderr tail: {}",
                    self.command.join(" "),
                    describe(status),
                    process.stderr_tail(START_WAIT)
                ))
            }
            _ => Ok(()),
        }
    }
}
