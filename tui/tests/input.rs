//! Keys to commands to what the feed receives: the operator's overrides, the replay
//! clock, the drain.

mod common;

use brigade_controller::Override;
use brigade_tui::{App, Command, Options};
use common::{app_at, key, screen, snapshot, FakeFeed, MIB};
use ratatui::crossterm::event::KeyCode;

fn press(app: &mut App, feed: &mut FakeFeed, keys: &str) {
    for c in keys.chars() {
        app.handle_key(key(KeyCode::Char(c)), feed);
    }
}

#[test]
fn plus_on_stage_1_pins_it_at_live_plus_one_and_again_before_the_next_tick() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    app.handle_key(key(KeyCode::Down), &mut feed);
    assert_eq!(app.selected(), 1);
    press(&mut app, &mut feed, "++");
    assert_eq!(
        feed.applied,
        [
            Override::PinWorkers {
                stage: 1,
                workers: 7
            },
            Override::PinWorkers {
                stage: 1,
                workers: 8
            },
        ]
    );
    assert_eq!(app.status(), Some("pinned geocode at 8 workers"));
}

#[test]
fn minus_on_a_pinned_stage_starts_from_its_pin() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "jj-");
    assert_eq!(
        feed.applied,
        [Override::PinWorkers {
            stage: 2,
            workers: 3
        }]
    );
}

#[test]
fn pins_stay_within_the_pool_limits() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "--");
    assert_eq!(
        feed.applied,
        [Override::PinWorkers {
            stage: 0,
            workers: 1
        }]
    );
    assert_eq!(app.status(), Some("parse is at its minimum of 1"));
}

#[test]
fn u_unpins_the_selected_stage() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "jju");
    assert_eq!(feed.applied, [Override::Unpin { stage: 2 }]);
}

#[test]
fn a_toggles_pause_and_resume() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "aa");
    assert_eq!(feed.applied, [Override::Pause, Override::Resume]);
    let mut paused = snapshot(31);
    paused.paused = true;
    app.ingest(paused, Vec::new());
    press(&mut app, &mut feed, "a");
    assert_eq!(feed.applied[2], Override::Resume);
}

#[test]
fn brackets_scale_the_budget() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "]");
    press(&mut app, &mut feed, "[");
    assert_eq!(
        feed.applied,
        [
            Override::SetBudget {
                bytes: Some(320 * MIB)
            },
            Override::SetBudget {
                bytes: Some(256 * MIB)
            },
        ]
    );
}

#[test]
fn without_a_budget_the_first_one_starts_from_bytes_in_flight() {
    let mut app = App::new(Options::default());
    let mut uncapped = snapshot(30);
    uncapped.global.memory_budget = None;
    uncapped.knobs.memory_budget = None;
    app.ingest(uncapped, Vec::new());
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "[");
    let expected = (201.0 * MIB as f64 * 0.8).round() as u64;
    assert_eq!(
        feed.applied,
        [Override::SetBudget {
            bytes: Some(expected)
        }]
    );
}

#[test]
fn q_drains_and_the_app_exits_when_the_feed_has_finished() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "q");
    assert_eq!(feed.drains, 1);
    assert!(!app.should_exit());
    for (tick, in_flight) in [(31, 600), (32, 40), (33, 0)] {
        let mut draining = snapshot(tick);
        draining.global.totals.in_flight = in_flight;
        feed.ticks.push_back((draining, Vec::new()));
        app.poll(&mut feed);
        assert!(!app.should_exit(), "in flight {in_flight}");
    }
    let text = format!("{:?}", screen(&app, 80, 24));
    assert!(text.contains("0 in flight of 1188"), "{text}");
    feed.finished = true;
    app.poll(&mut feed);
    assert!(app.should_exit());
}

#[test]
fn a_second_q_quits_at_once() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "qq");
    assert_eq!(feed.drains, 1);
    assert!(app.should_exit());
}

#[test]
fn q_after_the_pipeline_finished_quits_without_a_drain() {
    let mut app = app_at(30);
    let mut feed = FakeFeed {
        finished: true,
        ..FakeFeed::default()
    };
    app.poll(&mut feed);
    assert!(!app.should_exit());
    press(&mut app, &mut feed, "q");
    assert_eq!(feed.drains, 0);
    assert!(app.should_exit());
}

#[test]
fn replay_keys_steer_the_clock_within_limits() {
    let mut app = app_at(30);
    let mut feed = FakeFeed {
        is_replay: true,
        ..FakeFeed::default()
    };
    app.attach(&mut feed);
    assert_eq!(feed.replay, Some((false, 1.0)));
    press(&mut app, &mut feed, ">>");
    assert_eq!(feed.replay, Some((false, 4.0)));
    press(&mut app, &mut feed, " ");
    assert_eq!(feed.replay, Some((true, 4.0)));
    press(&mut app, &mut feed, &">".repeat(10));
    assert_eq!(feed.replay, Some((true, 64.0)));
    press(&mut app, &mut feed, &"<".repeat(20));
    assert_eq!(feed.replay, Some((true, 0.25)));
    assert!(feed.applied.is_empty());
}

#[test]
fn replay_keys_do_nothing_to_a_live_feed() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    app.attach(&mut feed);
    press(&mut app, &mut feed, "> ");
    assert_eq!(feed.replay, None);
    assert!(app.status().unwrap().contains("live pipeline"));
}

#[test]
fn freeze_keeps_the_screen_while_ticks_arrive() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "f");
    feed.ticks.push_back((snapshot(45), Vec::new()));
    app.poll(&mut feed);
    let frozen = format!("{:?}", screen(&app, 120, 40));
    assert!(
        frozen.contains("tick 30") && frozen.contains("FROZEN"),
        "{frozen}"
    );
    press(&mut app, &mut feed, "f");
    let live = format!("{:?}", screen(&app, 120, 40));
    assert!(
        live.contains("tick 45") && !live.contains("FROZEN"),
        "{live}"
    );
}

#[test]
fn selection_stays_on_the_stages() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "kjjjjj");
    assert_eq!(app.selected(), 2);
    app.update(Command::Up, &mut feed);
    assert_eq!(app.selected(), 1);
}

#[test]
fn help_opens_and_escape_closes_it() {
    let mut app = app_at(30);
    let mut feed = FakeFeed::default();
    press(&mut app, &mut feed, "?");
    assert!(format!("{:?}", screen(&app, 100, 30)).contains("keys · Esc closes"));
    app.handle_key(key(KeyCode::Esc), &mut feed);
    assert!(!format!("{:?}", screen(&app, 100, 30)).contains("keys · Esc closes"));
}
