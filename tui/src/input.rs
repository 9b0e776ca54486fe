//! Keys to commands: the whole key map in one place, so the help overlay, the footer
//! and the tests agree on it.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Select the stage above.
    Up,
    /// Select the stage below.
    Down,
    /// Pin the selected stage at one worker more.
    PinUp,
    /// Pin the selected stage at one worker fewer.
    PinDown,
    /// Give the selected stage back to the controller.
    Unpin,
    /// Pause the controller, or resume it.
    TogglePause,
    /// Memory budget ×0.8.
    BudgetDown,
    /// Memory budget ×1.25.
    BudgetUp,
    /// Freeze the display, or let it move again.
    Freeze,
    /// Replay at half the speed.
    Slower,
    /// Replay at twice the speed.
    Faster,
    /// Pause the replay's clock, or resume it.
    ToggleReplay,
    /// Scroll the decision log towards older entries.
    LogOlder,
    /// Scroll the decision log towards newer entries.
    LogNewer,
    /// Show or hide the help overlay.
    Help,
    /// Close the help overlay.
    Back,
    /// Drain and quit; a second one quits at once.
    Quit,
}

/// The key map, as the help overlay shows it: keys, then what they do.
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  k j", "select a stage"),
    ("+ -", "pin the stage's workers one up / down"),
    ("u", "unpin: give the stage back to the controller"),
    ("a", "pause / resume the controller"),
    ("[ ]", "memory budget ×0.8 / ×1.25"),
    ("f", "freeze / unfreeze the display"),
    ("< >", "replay speed ÷2 / ×2 (0.25×–64×)"),
    ("space", "pause / resume the replay"),
    ("PgUp PgDn", "scroll the decision log"),
    ("?", "this help (Esc closes it)"),
    ("q", "drain and quit; q again quits at once"),
];

/// The command a key press stands for, if any. Releases and repeats of keys that act
/// once (everything but selection and scrolling) are ignored.
pub fn command(key: KeyEvent) -> Option<Command> {
    let repeatable = matches!(
        key.code,
        KeyCode::Up | KeyCode::Down | KeyCode::PageUp | KeyCode::PageDown
    );
    match key.kind {
        KeyEventKind::Press => {}
        KeyEventKind::Repeat if repeatable => {}
        _ => return None,
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Command::Quit);
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Command::Up,
        KeyCode::Down | KeyCode::Char('j') => Command::Down,
        KeyCode::Char('+') | KeyCode::Char('=') => Command::PinUp,
        KeyCode::Char('-') | KeyCode::Char('_') => Command::PinDown,
        KeyCode::Char('u') => Command::Unpin,
        KeyCode::Char('a') => Command::TogglePause,
        KeyCode::Char('[') => Command::BudgetDown,
        KeyCode::Char(']') => Command::BudgetUp,
        KeyCode::Char('f') => Command::Freeze,
        KeyCode::Char('<') | KeyCode::Char(',') => Command::Slower,
        KeyCode::Char('>') | KeyCode::Char('.') => Command::Faster,
        KeyCode::Char(' ') => Command::ToggleReplay,
        KeyCode::PageDown => Command::LogOlder,
        KeyCode::PageUp => Command::LogNewer,
        KeyCode::Char('?') | KeyCode::Char('h') => Command::Help,
        KeyCode::Esc => Command::Back,
        KeyCode::Char('q') => Command::Quit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn maps_letters_arrows_and_ctrl_c() {
        assert_eq!(command(press(KeyCode::Char('j'))), Some(Command::Down));
        assert_eq!(command(press(KeyCode::Up)), Some(Command::Up));
        assert_eq!(command(press(KeyCode::Char('+'))), Some(Command::PinUp));
        assert_eq!(command(press(KeyCode::Char(']'))), Some(Command::BudgetUp));
        assert_eq!(
            command(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Command::Quit)
        );
        assert_eq!(
            command(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::CONTROL)),
            None
        );
        assert_eq!(command(press(KeyCode::Char('z'))), None);
    }

    #[test]
    fn releases_and_repeated_actions_are_ignored() {
        let mut release = press(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(command(release), None);
        let mut repeat = press(KeyCode::Char('+'));
        repeat.kind = KeyEventKind::Repeat;
        assert_eq!(command(repeat), None);
        repeat.code = KeyCode::Down;
        assert_eq!(command(repeat), Some(Command::Down));
    }
}
