//! The screen as the operator sees it, drawn into ratatui's test terminal and compared
//! with the committed snapshots (`cargo insta review` after an intended change).

mod common;

use brigade_tui::Command;
use common::{app_at, screen, FakeFeed};

#[test]
fn main_screen() {
    let app = app_at(30);
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn stage_detail_with_history() {
    let mut app = app_at(60);
    app.update(Command::Down, &mut FakeFeed::default());
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn help_overlay() {
    let mut app = app_at(30);
    app.update(Command::Help, &mut FakeFeed::default());
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn small_terminal() {
    let app = app_at(30);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn drain_in_progress() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    app.update(Command::Quit, &mut feed);
    let mut later = common::snapshot(33);
    later.global.totals.in_flight = 297;
    app.ingest(later, Vec::new());
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn before_the_first_tick() {
    let app = brigade_tui::App::new(brigade_tui::Options::default());
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn any_terminal_size_draws_without_panicking() {
    let mut app = app_at(40);
    let mut feed = FakeFeed::default();
    // The plain screen, then with the help overlay, then with the drain overlay too.
    for command in [Command::Down, Command::Help, Command::Quit] {
        app.update(command, &mut feed);
        for width in (1..=200).step_by(7) {
            for height in (1..=60).step_by(5) {
                screen(&app, width, height);
            }
        }
    }
}

#[test]
fn reading_files_with_known_totals() {
    // geocode selected: its workers failed to open on the tick before the last.
    let mut app = common::app_reading_files(30, true);
    app.update(Command::Down, &mut FakeFeed::default());
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn reading_files_without_totals_on_a_small_terminal() {
    let app = common::app_reading_files(30, false);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn the_source_read_to_its_end() {
    let mut app = common::app_reading_files(99, true);
    let mut last = common::reading_files(100, true);
    last.global.source.exhausted = true;
    app.ingest(last, Vec::new());
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn any_terminal_size_draws_progress_and_open_failures_without_panicking() {
    let mut app = common::app_reading_files(30, true);
    app.update(Command::Down, &mut FakeFeed::default());
    for width in (1..=200).step_by(7) {
        for height in (1..=60).step_by(5) {
            screen(&app, width, height);
        }
    }
}
