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

/// Writes `files` JSON-lines files of `lines` records each (ids from 0) under
/// `dir/in`, and a pipeline file reading them through a field edit into
/// `out.jsonl`, its sink held to `rate` records a second, with a checkpoint.
fn slow_pipeline(dir: &Path, files: usize, lines: usize, rate: u32) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for file in 0..files {
        let text: String = (0..lines)
            .map(|line| format!("{{\"id\":{}}}\n", file * lines + line))
            .collect();
        std::fs::write(dir.join(format!("in/part{file}.jsonl")), text).unwrap();
    }
    let pipeline = dir.join("slow.toml");
    std::fs::write(
        &pipeline,
        format!(
            "name = \"slow\"\n\
             [source]\ntype = \"file\"\npath = \"in/*.jsonl\"\nformat = \"jsonl\"\n\
             [[stage]]\nname = \"tag\"\ntype = \"fields\"\nset = {{ seen = true }}\n\
             [sink]\ntype = \"file\"\npath = \"out.jsonl\"\nrate_limit = {rate}\n\
             [dead_letter]\npath = \"dead.jsonl\"\n\
             [checkpoint]\ndir = \"state\"\ninterval = \"100ms\"\n"
        ),
    )
    .unwrap();
    pipeline
}

/// The ids in the JSON-lines file at `path`, in file order.
fn ids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["id"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_pipeline_run_shows_its_progress_and_drains_on_quit_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (files, lines) = (4, 5_000);
    let pipeline = slow_pipeline(dir.path(), files, lines, 2_000);
    let pipeline = pipeline.to_str().unwrap();
    let mut terminal = Pty::spawn(
        env!("CARGO_BIN_EXE_brigade"),
        &["run", pipeline],
        dir.path(),
        ROWS,
        COLS,
    );
    // The header's progress line: files done of the total.
    terminal.wait_for("the input's progress", PATIENCE, |s| {
        s.rows(0, COLS)
            .take(5)
            .any(|row| row.contains("files") && row.contains("/4"))
    });
    terminal.wait_for("records written", PATIENCE, |s| {
        stage_row(s, "sink").is_some_and(|row| !row.contains(" 0 "))
    });
    terminal.type_keys("q");
    let status = terminal.wait_exit(PATIENCE);
    assert!(status.success(), "{status:?}");
    let report = terminal.screen().contents();
    assert!(report.contains("checkpoint"), "{report}");

    // Quit drained what was admitted: written once, and acknowledged.
    let first = ids(&dir.path().join("out.jsonl"));
    assert!(
        !first.is_empty() && first.len() < files * lines,
        "{}",
        first.len()
    );
    let mut seen = first.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), first.len(), "a record was written twice");

    // The same command again reads only the rest: every record exactly once.
    let rerun = std::process::Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["run", pipeline, "--headless"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{rerun:?}");
    let mut all = ids(&dir.path().join("out.jsonl"));
    all.sort_unstable();
    let expected: Vec<u64> = (0..(files * lines) as u64).collect();
    assert_eq!(all, expected);
    assert_eq!(ids(&dir.path().join("dead.jsonl")), Vec::<u64>::new());
}
