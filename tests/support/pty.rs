//! A program in a pseudo-terminal, read as a person sees it: what it writes goes through
//! a terminal emulator (vt100) into a screen, and keys are typed into it.
//!
//! Every wait polls the screen until a condition holds, up to a deadline, and then
//! fails with what the screen showed: nothing here sleeps for a fixed time, so tests stay
//! steady on a loaded machine and quick on an idle one.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, ExitStatus, MasterPty, PtySize};

/// How long one read of the program's output waits before the condition is checked
/// again.
const POLL: Duration = Duration::from_millis(20);

/// A program running in a pseudo-terminal; killed if still running when dropped.
pub struct Pty {
    child: Box<dyn Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    /// Chunks of output, read by a thread; closed once the terminal has no writer left.
    output: Receiver<Vec<u8>>,
    parser: vt100::Parser,
    written: Vec<u8>,
    /// Kept open for as long as the program runs.
    _master: Box<dyn MasterPty + Send>,
}

impl Pty {
    /// Starts `program` with `args` in the folder `dir`, on a terminal of `rows` ×
    /// `cols`.
    pub fn spawn(program: &str, args: &[&str], dir: &Path, rows: u16, cols: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal opens");
        let mut command = CommandBuilder::new(program);
        command.args(args);
        command.cwd(dir);
        command.env("TERM", "xterm-256color");
        let child = pair
            .slave
            .spawn_command(command)
            .unwrap_or_else(|err| panic!("{program} starts: {err}"));
        // Only the program holds the terminal's other end now, so the reader ends when
        // the program does.
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("the terminal reads");
        let keys = pair.master.take_writer().expect("the terminal writes");
        let (sender, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buffer = [0; 8192];
            while let Ok(read @ 1..) = reader.read(&mut buffer) {
                if sender.send(buffer[..read].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            keys,
            output,
            parser: vt100::Parser::new(
                NonZeroU16::new(rows).expect("a screen has rows"),
                NonZeroU16::new(cols).expect("a screen has columns"),
                0,
            ),
            written: Vec::new(),
            _master: pair.master,
        }
    }

    /// Types `keys` as they are (a key is its bytes: `"q"`, `" "`, `"\x1b[B"`).
    pub fn type_keys(&mut self, keys: &str) {
        self.keys
            .write_all(keys.as_bytes())
            .and_then(|()| self.keys.flush())
            .expect("keys reach the terminal");
    }

    /// Reads output until `check` holds for the screen, and returns the screen's text;
    /// fails naming `what` it waited for, with the screen, after `timeout`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&vt100::Screen) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self.parser.screen()) {
                return self.parser.screen().contents();
            }
            let open = self.read(POLL);
            if !open || Instant::now() >= deadline {
                // The last bytes may have made it true.
                if check(self.parser.screen()) {
                    return self.parser.screen().contents();
                }
                panic!(
                    "waited {timeout:?} for {what}{}; the screen:\n{}",
                    if open { "" } else { ", and the program ended" },
                    self.parser.screen().contents()
                );
            }
        }
    }

    /// Waits for the program to exit and reads the last of its output; fails after
    /// `timeout`, with the screen.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let mut status = None;
        loop {
            let open = self.read(POLL);
            if status.is_none() {
                status = self
                    .child
                    .try_wait()
                    .expect("the program can be waited for");
            }
            match status {
                Some(status) if !open => return status,
                _ if Instant::now() >= deadline => panic!(
                    "waited {timeout:?} for the program to end (exited: {status:?}); the screen:\n{}",
                    self.parser.screen().contents()
                ),
                _ => {}
            }
        }
    }

    /// The screen as it is now.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Every byte the program wrote, escape sequences and all.
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    /// Reads what the program wrote, waiting up to `wait` for the first chunk; false
    /// once the output has ended.
    fn read(&mut self, wait: Duration) -> bool {
        let mut next = self.output.recv_timeout(wait);
        loop {
            match next {
                Ok(chunk) => {
                    let before = self.written.len().saturating_sub(QUERY.len() - 1);
                    self.parser.process(&chunk);
                    self.written.extend_from_slice(&chunk);
                    self.answer_cursor_queries(before);
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
            next = self.output.try_recv().map_err(|err| match err {
                mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            });
        }
    }
}

/// The query for the cursor position (DSR 6), which a terminal answers with
/// `ESC [ row ; col R`.
const QUERY: &[u8] = b"\x1b[6n";

impl Pty {
    /// Answers the cursor-position queries written from `from` on, as a terminal does
    /// (the dashboard's terminal library asks when it starts).
    fn answer_cursor_queries(&mut self, from: usize) {
        let asked = self.written[from..]
            .windows(QUERY.len())
            .filter(|window| *window == QUERY)
            .count();
        for _ in 0..asked {
            let (row, col) = self.parser.screen().cursor_position();
            let answer = format!("\x1b[{};{}R", row + 1, col + 1);
            self.type_keys(&answer);
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
