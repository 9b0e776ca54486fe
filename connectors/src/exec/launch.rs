//! Where an exec stage's program is and how it is started: resolved once, spawned for
//! every (re)start.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::Process;
use super::{ExecConfig, ExecError};

/// The default answer limit.
const DEFAULT_MAX_ANSWER: u64 = 64 << 20;

/// The resolved program, its arguments, directory and environment.
#[derive(Debug)]
pub(super) struct Launch {
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    env: BTreeMap<String, String>,
    max_answer: u64,
}

impl Launch {
    /// Resolves `config` against `base`, the pipeline file's directory: the working
    /// directory, and the program (by path, or on `PATH`), which must be executable.
    pub(super) fn resolve(config: &ExecConfig, base: &Path) -> Result<Launch, ExecError> {
        let (program, args) = config
            .command
            .split_first()
            .ok_or(ExecError::EmptyCommand)?;
        let dir = base.join(config.dir.as_deref().unwrap_or(Path::new(".")));
        if !dir.is_dir() {
            return Err(ExecError::NoDirectory { path: dir });
        }
        let program = if program.contains('/') {
            base.join(program)
        } else {
            let path = config
                .env
                .get("PATH")
                .map(OsString::from)
                .or_else(|| std::env::var_os("PATH"));
            path.iter()
                .flat_map(std::env::split_paths)
                .map(|directory| directory.join(program))
                .find(|candidate| is_executable(candidate))
                .ok_or_else(|| ExecError::NotFound {
                    program: program.clone(),
                })?
        };
        if !is_executable(&program) {
            return Err(ExecError::NotExecutable { path: program });
        }
        Ok(Launch {
            program,
            args: args.to_vec(),
            dir,
            env: config.env.clone(),
            max_answer: config.max_answer.map_or(DEFAULT_MAX_ANSWER, |size| size.0),
        })
    }

    /// Starts the process, with its pipes and the threads reading them.
    pub(super) fn spawn(&self) -> Result<Process, ExecError> {
        let spawn_error = |source| ExecError::Spawn {
            program: self.program.clone(),
            source,
        };
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.dir)
            .envs(&self.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        Process::attach(child, self.max_answer).map_err(spawn_error)
    }

    /// [`spawn`](Self::spawn), tried a few times with growing pauses.
    pub(super) fn spawn_with_backoff(&self) -> Result<Process, ExecError> {
        let mut pauses = [Duration::from_millis(100), Duration::from_millis(400)].into_iter();
        loop {
            match self.spawn() {
                Ok(process) => return Ok(process),
                Err(error) => match pauses.next() {
                    Some(pause) => std::thread::sleep(pause),
                    None => return Err(error),
                },
            }
        }
    }

    /// The answer limit in bytes.
    pub(super) fn max_answer(&self) -> u64 {
        self.max_answer
    }
}

/// A regular file some execute bit is set on.
fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}
