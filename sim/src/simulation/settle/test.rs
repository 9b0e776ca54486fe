//! Settling per phase on hand-made series: each change of load is judged on what
//! follows it, never on what came before.

use super::{load_changes, settle_s};
use crate::TickSample;
use brigade_scenario as scenario;

/// One-second ticks from 1 to `seconds`, tick `t` finishing `rate(t)` records.
fn series(seconds: u32, rate: impl Fn(u32) -> u64) -> Vec<TickSample> {
    (1..=seconds)
        .map(|t| TickSample {
            at_s: f64::from(t),
            window_s: 1.0,
            completed: rate(t),
            workers: vec![1],
            inflight_bytes: 0,
            budget: None,
        })
        .collect()
}

/// Rises linearly from `from` to `to` over `ramp_s` seconds after `start`, then holds.
fn ramp(t: u32, start: u32, ramp_s: u32, from: u64, to: u64) -> u64 {
    let into = u64::from(t.saturating_sub(start).min(ramp_s));
    from + (to - from) * into / u64::from(ramp_s)
}

#[test]
fn a_load_that_rises_at_minute_four_does_not_count_minutes_zero_to_four() {
    // 100 records/s from the start, then 1 000/s from minute 4, reached within 10 s.
    let series = series(600, |t| {
        if t <= 240 {
            100
        } else {
            ramp(t, 240, 10, 100, 1_000)
        }
    });
    let whole_run = settle_s(&series, &[0.0], 600.0);
    assert!(
        whole_run > 240.0,
        "against the whole run's best: {whole_run}"
    );
    // Judged from minute 4: the 30 s mean reaches 950/s once the ramp's shortfall
    // (4 500 records) is down to 1 500 within the window, 34–35 s after the change.
    let per_phase = settle_s(&series, &[0.0, 240.0], 600.0);
    assert!((34.0..=35.0).contains(&per_phase), "{per_phase}");
}

#[test]
fn the_longest_span_is_reported() {
    // Ramps for 20 s at the start and for 70 s after the change at minute 5: the 30 s
    // mean is within 5% about 42 s and 85 s after each.
    let series = series(600, |t| {
        if t <= 300 {
            ramp(t, 0, 20, 0, 500)
        } else {
            ramp(t, 300, 70, 200, 2_000)
        }
    });
    let settle = settle_s(&series, &[0.0, 300.0], 600.0);
    assert!((84.0..=86.0).contains(&settle), "{settle}");
    let start_only = settle_s(&series[..300], &[0.0], 300.0);
    assert!((42.0..=44.0).contains(&start_only), "{start_only}");
}

#[test]
fn a_drop_in_load_is_judged_without_the_rate_before_it() {
    // 1 000/s, then 200/s from minute 3, reached only after 40 s at 50/s: a window
    // reaching back before the change would call it settled at once.
    let series = series(420, |t| match t {
        0..=180 => 1_000,
        181..=220 => 50,
        _ => 200,
    });
    let settle = settle_s(&series, &[0.0, 180.0], 420.0);
    assert!(
        settle >= 40.0,
        "the slow stretch after the drop counts: {settle}"
    );
}

#[test]
fn spans_shorter_than_a_minute_are_not_judged() {
    // A change at 100 s and another at 130 s: the 30 s between is not judged, even
    // though nothing finishes in it.
    let series = series(300, |t| if (101..=130).contains(&t) { 0 } else { 500 });
    let settle = settle_s(&series, &[0.0, 100.0, 130.0], 300.0);
    assert!(settle <= 1.0, "{settle}");
    assert_eq!(settle_s(&series, &[0.0], 50.0), 0.0, "a run under a minute");
}

#[test]
fn a_one_tick_burst_after_a_stall_does_not_set_the_bar() {
    // The backlog a stall held drains in one tick at 20× the steady rate; then the
    // rate is steady at once.
    let series = series(400, |t| match t {
        221 => 10_000,
        _ => 500,
    });
    let settle = settle_s(&series, &[0.0, 220.0], 400.0);
    assert!(settle <= 1.0, "{settle}");
}

#[test]
fn a_stall_counts_from_its_end_and_phases_are_ordered() {
    let scenario = scenario::parse_str(
        r#"name = "phased"
duration = "20m"

[source]
rate = 100
size = { dist = "fixed", value = "1KiB" }

[[stage]]
name = "write"
kind = "io"
service = { dist = "fixed", value = "1ms" }

[[phase]]
at = "10m"
source_rate = 300

[[phase]]
at = "2m"
stage = "write"
stall = "2m"

[[phase]]
at = "4m"
stage = "write"
service_scale = 2.0
"#,
        "phased.toml",
    )
    .expect("the scenario parses");
    assert_eq!(load_changes(&scenario), vec![0.0, 240.0, 600.0]);
}
