//! One running exec process: its standard input fed by a thread, its standard output
//! read into answer lines by another, its standard error kept as a tail by a third.
//! Dropping it kills and reaps the process.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::tail::Tail;

/// How many answer lines may wait, read, for `call` to take them.
const WAITING_LINES: usize = 16;

/// How often an exit is polled for.
const POLL: Duration = Duration::from_millis(5);

/// One line of the process's standard output, or its end.
#[derive(Debug)]
pub(super) enum Line {
    /// A whole line, without its newline.
    Text(Vec<u8>),
    /// A line longer than the answer limit (read past and dropped).
    TooLong,
    /// Standard output closed (the process exited) or could not be read.
    End,
}

/// A running process and the threads around it.
#[derive(Debug)]
pub(super) struct Process {
    child: Child,
    threads: Threads,
}

/// The ends of the threads that feed and read a process.
#[derive(Debug)]
struct Threads {
    input: Option<Sender<Vec<u8>>>,
    answers: Receiver<Line>,
    stderr: Arc<Mutex<Tail>>,
    stderr_reader: JoinHandle<()>,
}

impl Threads {
    /// Starts the threads on `child`'s pipes.
    fn start(child: &mut Child, max_answer: u64) -> io::Result<Threads> {
        let missing = |pipe| io::Error::other(format!("the process has no {pipe} pipe"));
        let mut stdin = child.stdin.take().ok_or_else(|| missing("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| missing("stdout"))?;
        let mut stderr = child.stderr.take().ok_or_else(|| missing("stderr"))?;

        let (input, lines) = mpsc::channel::<Vec<u8>>();
        thread::Builder::new()
            .name("exec-stdin".into())
            .spawn(move || {
                // Ends when the process stops reading (the reader then sees it end) or
                // when the worker lets go of its sender.
                for line in lines {
                    if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
                        break;
                    }
                }
            })?;

        let (answer, answers) = mpsc::sync_channel(WAITING_LINES);
        thread::Builder::new()
            .name("exec-stdout".into())
            .spawn(move || read_answers(BufReader::new(stdout), max_answer, &answer))?;

        let tail = Arc::new(Mutex::new(Tail::default()));
        let kept = Arc::clone(&tail);
        let stderr_reader = thread::Builder::new()
            .name("exec-stderr".into())
            .spawn(move || {
                let mut chunk = [0; 4096];
                while let Ok(read @ 1..) = stderr.read(&mut chunk) {
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&chunk[..read]);
                }
            })?;
        Ok(Threads {
            input: Some(input),
            answers,
            stderr: tail,
            stderr_reader,
        })
    }
}

impl Process {
    /// Takes over `child`'s pipes with a writer, a reader and a standard-error thread.
    /// On an error the child is killed and reaped.
    pub(super) fn attach(mut child: Child, max_answer: u64) -> io::Result<Process> {
        match Threads::start(&mut child, max_answer) {
            Ok(threads) => Ok(Process { child, threads }),
            Err(error) => {
                // The child is gone either way; its own error is the one to report.
                let _ = child.kill();
                let _ = child.wait();
                Err(error)
            }
        }
    }

    /// Queues `line` for the process's standard input.
    pub(super) fn send(&self, line: Vec<u8>) {
        if let Some(input) = &self.threads.input {
            // A writer gone means the process stopped reading: the reader reports that.
            let _ = input.send(line);
        }
    }

    /// The next line, waiting up to `timeout`; None when none came in time.
    pub(super) fn receive(&self, timeout: Duration) -> Option<Line> {
        match self.threads.answers.recv_timeout(timeout) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => Some(Line::End),
            Err(RecvTimeoutError::Timeout) => None,
        }
    }

    /// Whether the process is no longer fit for a new record: it wrote a line nobody
    /// asked for (so its answers would be taken for the wrong records), or it ended.
    pub(super) fn is_spent(&mut self) -> bool {
        match self.threads.answers.try_recv() {
            Ok(_) | Err(TryRecvError::Disconnected) => true,
            Err(TryRecvError::Empty) => !matches!(self.child.try_wait(), Ok(None)),
        }
    }

    /// Closes the process's standard input: a well-behaved process then exits.
    pub(super) fn close_input(&mut self) {
        self.threads.input = None;
    }

    /// Waits up to `grace` for the process to exit.
    pub(super) fn wait_exit(&mut self, grace: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Kills the process and reaps it.
    pub(super) fn kill(&mut self) {
        self.threads.input = None;
        // Killing an exited process fails harmlessly; waiting reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The tail of standard error, once its reader has read to the end (waiting up to
    /// `wait` for that, since a child of the process may hold the pipe open).
    pub(super) fn stderr_tail(&self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        while !self.threads.stderr_reader.is_finished() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        self.threads
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .text()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `exited with status 3`, `was killed by signal 9`.
pub(super) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// Sends each line of `stdout` (at most `max_answer` bytes) until it ends.
fn read_answers(mut stdout: impl BufRead, max_answer: u64, answer: &SyncSender<Line>) {
    loop {
        let line = read_line(&mut stdout, max_answer).unwrap_or(None);
        let end = line.is_none();
        if answer.send(line.unwrap_or(Line::End)).is_err() || end {
            return;
        }
    }
}

/// One line, or None at the end. A line past `limit` bytes is read to its end and
/// dropped. A last line without a newline counts.
fn read_line(reader: &mut impl BufRead, limit: u64) -> io::Result<Option<Line>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Some(Line::TooLong),
                (false, true) => None,
                (false, false) => Some(Line::Text(line)),
            });
        }
        let newline = buffer.iter().position(|&byte| byte == b'\n');
        let taken = newline.unwrap_or(buffer.len());
        if !too_long {
            if line.len() + taken > limit {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buffer[..taken]);
            }
        }
        match newline {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(Some(if too_long {
                    Line::TooLong
                } else {
                    Line::Text(line)
                }));
            }
            None => reader.consume(taken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], limit: u64) -> Vec<String> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut found = Vec::new();
        while let Some(line) = read_line(&mut reader, limit).unwrap() {
            found.push(match line {
                Line::Text(text) => String::from_utf8(text).unwrap(),
                Line::TooLong => "<too long>".into(),
                Line::End => "<end>".into(),
            });
        }
        found
    }

    #[test]
    fn lines_are_split_across_reads_and_bounded() {
        assert_eq!(lines(b"ab\n\ncdefgh\nij", 100), ["ab", "", "cdefgh", "ij"]);
        assert_eq!(lines(b"ab\ncdefgh\nij\n", 5), ["ab", "<too long>", "ij"]);
        assert_eq!(lines(b"abcdefgh", 5), ["<too long>"]);
    }
}
