//! Owning the terminal: raw mode and the alternate screen on the way in, the terminal
//! as it was on the way out, whether the way out is a return, an error or a panic.

use std::io::{self, Stdout};
use std::ops::{Deref, DerefMut};
use std::panic::{self, PanicHookInfo};
use std::sync::Arc;
use std::thread::{self, ThreadId};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// The terminal in raw mode on the alternate screen, given back as it was when dropped.
pub(crate) struct Guard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Option<Hook>,
    restored: bool,
}

impl Guard {
    /// Enters raw mode and the alternate screen, and restores both on a panic of the
    /// calling thread. Panics of other threads (a stage function the runtime catches)
    /// leave the screen alone.
    pub(crate) fn enter() -> io::Result<Self> {
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let previous: Hook = Arc::from(panic::take_hook());
        let owner: ThreadId = thread::current().id();
        let chained = previous.clone();
        panic::set_hook(Box::new(move |info| {
            if thread::current().id() == owner {
                let _ = restore();
            }
            chained(info);
        }));
        let mut guard = Self {
            terminal,
            previous_hook: Some(previous),
            restored: false,
        };
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen)?;
        guard.terminal.clear()?;
        Ok(guard)
    }

    /// Gives the terminal back, reporting a failure to do so.
    pub(crate) fn leave(mut self) -> io::Result<()> {
        self.put_hook_back();
        self.restored = true;
        restore()
    }

    fn put_hook_back(&mut self) {
        // The hook cannot be changed while this thread panics: ours stays, harmlessly.
        if thread::panicking() {
            return;
        }
        if let Some(previous) = self.previous_hook.take() {
            let _ = panic::take_hook();
            panic::set_hook(Box::new(move |info| previous(info)));
        }
    }
}

impl Deref for Guard {
    type Target = Terminal<CrosstermBackend<Stdout>>;

    fn deref(&self) -> &Self::Target {
        &self.terminal
    }
}

impl DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.terminal
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.put_hook_back();
        if !self.restored {
            let _ = restore();
        }
    }
}

fn restore() -> io::Result<()> {
    disable_raw_mode()?;
    execute!(io::stdout(), LeaveAlternateScreen, cursor::Show)
}
