//! The dashboard as a person uses it: the real `brigade` binary in a pseudo-terminal,
//! keys typed, the screen read back.

mod support;

use std::path::Path;
use std::time::Duration;

use support::pty::Pty;

const ROWS: u16 = 40;
const COLS: u16 = 120;
/// How long any one thing may take to show on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The stage table's row of `stage` (after the border: the selection mark, the name,
/// the figures), if the table shows it.
fn stage_row(screen: &vt100::Screen, stage: &str) -> Option<String> {
    screen.rows(0, COLS).find_map(|row| {
        let cells = row.strip_prefix('│')?;
        let name = cells
            .strip_prefix("▸ ")
            .or_else(|| cells.strip_prefix("  "))?;
        name.starts_with(&format!("{stage} "))
            .then(|| cells.to_owned())
    })
}

/// The header's first line: the controller's state and the figures.
fn header(screen: &vt100::Screen) -> String {
    screen.rows(0, COLS).nth(1).unwrap_or_default()
}

/// The tick the header shows (`… · tick 12 │`).
fn tick(screen: &vt100::Screen) -> Option<u64> {
    let line = header(screen);
    let after = &line[line.find("· tick ")? + "· tick ".len()..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The footer's status, at the left of the last row.
fn status(screen: &vt100::Screen) -> String {
    screen.rows(0, COLS).last().unwrap_or_default()
}

/// Selects the second stage, `stage`, and pins it one worker up; waits until the
/// status and the table show the pin, and returns the pinned count.
fn pin_second_stage(terminal: &mut Pty, stage: &str) -> usize {
    terminal.type_keys("j");
    terminal.wait_for("the stage selected", PATIENCE, |s| {
        stage_row(s, stage).is_some_and(|row| row.starts_with('▸'))
    });
    terminal.type_keys("+");
    let said = format!("pinned {stage} at ");
    let screen = terminal.wait_for("the pin's status", PATIENCE, |s| status(s).contains(&said));
    let pinned: usize = screen
        .split(&said)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("a worker count in the status: {screen}"));
    // The pin reaches the pipeline, and the next Snapshot shows it.
    let marker = format!("/{pinned} pin");
    terminal.wait_for("the stage pinned in the table", PATIENCE, |s| {
        stage_row(s, stage).is_some_and(|row| row.contains(&marker))
    });
    pinned
}

/// Pauses the controller and waits until a Snapshot taken after the pause (two ticks
/// on) shows it in the header.
fn pause_controller(terminal: &mut Pty) {
    let before = tick(terminal.screen()).expect("the header shows the tick");
    terminal.type_keys("a");
    terminal.wait_for("the controller paused", PATIENCE, |s| {
        header(s).contains("‖ controller paused") && tick(s).is_some_and(|t| t >= before + 2)
    });
}

#[test]
fn a_simulation_replays_in_the_dashboard_under_the_operators_keys() {
    let mut terminal = Pty::spawn(
        env!("CARGO_BIN_EXE_brigade"),
        &["sim", "scenarios/saturating-db.toml", "--tui"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
        ROWS,
        COLS,
    );
    terminal.wait_for("the stage table", PATIENCE, |s| {
        stage_row(s, "parse").is_some() && stage_row(s, "write").is_some()
    });
    assert!(terminal.screen().alternate_screen());
    assert!(header(terminal.screen()).contains("● controller running"));

    let pinned = pin_second_stage(&mut terminal, "write");
    terminal.wait_for("the pin in the decision log", PATIENCE, |s| {
        s.contents()
            .contains(&format!("operator  write workers → {pinned}"))
    });

    pause_controller(&mut terminal);

    terminal.type_keys(">");
    terminal.wait_for("the replay at 2×", PATIENCE, |s| {
        s.contents().contains("replay 2× ▶")
    });
    terminal.type_keys(">");
    terminal.wait_for("the replay at 4×", PATIENCE, |s| {
        s.contents().contains("replay 4× ▶")
    });
    terminal.type_keys(" ");
    terminal.wait_for("the replay paused", PATIENCE, |s| {
        s.contents().contains("replay 4× ‖ paused")
    });
    terminal.type_keys(" ");
    terminal.wait_for("the replay running again", PATIENCE, |s| {
        s.contents().contains("replay 4× ▶")
    });

    terminal.type_keys("q");
    let status = terminal.wait_exit(PATIENCE);
    assert!(status.success(), "{status:?}");
    let written = terminal.written();
    let last_enter = find_last(written, b"\x1b[?1049h").expect("it entered the alternate screen");
    let after = &written[last_enter..];
    let leave = find_last(after, b"\x1b[?1049l").expect("it left the alternate screen");
    assert!(
        find_last(&after[leave..], b"\x1b[?25h").is_some(),
        "it showed the cursor on the way out"
    );
    assert!(!terminal.screen().alternate_screen());
    assert!(!terminal.screen().hide_cursor());
}

#[test]
fn a_live_demo_takes_the_operators_keys_and_drains_on_quit() {
    let mut terminal = Pty::spawn(
        env!("CARGO_BIN_EXE_brigade"),
        &["demo", "tests/data/steady.toml"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
        ROWS,
        COLS,
    );
    terminal.wait_for("the stage table", PATIENCE, |s| {
        stage_row(s, "work").is_some() && stage_row(s, "store").is_some()
    });
    assert!(header(terminal.screen()).contains("● controller running"));

    pin_second_stage(&mut terminal, "store");
    pause_controller(&mut terminal);

    terminal.type_keys("q");
    let status = terminal.wait_exit(PATIENCE);
    assert!(status.success(), "{status:?}");
    assert!(!terminal.screen().alternate_screen());
    assert!(!terminal.screen().hide_cursor());
    // Back on the main screen, the drained run's report.
    let report = terminal.screen().contents();
    assert!(report.contains("steady · adaptive"), "{report}");
    assert!(report.contains("admitted"), "{report}");
}

/// Where `needle` last starts in `haystack`.
fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}
