//! The fleet against its own static settings, on a database three processes share.

use brigade_controller::from_name;
use brigade_scenario::{Coordination, Scenario};

use super::*;

fn scenario(coordination: Coordination) -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/fleet-db.toml");
    let mut scenario = brigade_scenario::load(path.as_ref()).unwrap();
    scenario.fleet.as_mut().unwrap().coordination = coordination;
    scenario
}

fn adaptive() -> Box<dyn Controller> {
    from_name("adaptive").unwrap()
}

/// The best fixed total among a few, and its throughput from `from_s` on.
fn best_fixed(scenario: &Scenario, from_s: f64) -> (usize, f64, Vec<(usize, f64)>) {
    let statics: Vec<(usize, f64)> = [6, 9, 12, 15, 18, 24]
        .into_iter()
        .map(|total| {
            let run = Fleet::with_total(scenario, total, adaptive, "fixed").run();
            (total, run.throughput_since(from_s))
        })
        .collect();
    let (total, rate) = statics
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    (total, rate, statics)
}

#[test]
fn started_together_the_leader_settles_the_fleets_writers_at_the_knee() {
    let mut scenario = scenario(Coordination::Leader);
    scenario.fleet.as_mut().unwrap().join_s = 0.0;
    let half = scenario.duration_s / 2.0;
    let led = Fleet::new(&scenario, adaptive, "adaptive").run();
    let (best_total, best, statics) = best_fixed(&scenario, half);
    let rate = led.throughput_since(half);
    let writers = led.final_writers();
    let report = format!(
        "leader: {rate:.0}/s with {writers} writers; fixed totals {statics:.0?}; decisions {:?}",
        led.limits
    );
    assert!(rate >= 0.95 * best, "{report}");
    assert!(writers <= best_total + 3, "{report}");
    assert_eq!(led.writer_reversals_since(half), 0, "{report}");
}

#[test]
fn as_processes_join_the_leader_holds_the_knee_where_alone_they_pile_up_past_it() {
    let led_scenario = scenario(Coordination::Leader);
    // The last process joins at 3 minutes; judge the last 3 of 8.
    let from_s = led_scenario.duration_s - 180.0;
    let led = Fleet::new(&led_scenario, adaptive, "adaptive").run();
    let alone = Fleet::new(&scenario(Coordination::None), adaptive, "adaptive").run();
    let (best_total, best, statics) = best_fixed(&led_scenario, from_s);
    let (rate, alone_rate) = (led.throughput_since(from_s), alone.throughput_since(from_s));
    let (writers, alone_writers) = (led.final_writers(), alone.final_writers());
    let report = format!(
        "leader: {rate:.0}/s with {writers} writers; alone: {alone_rate:.0}/s with \
         {alone_writers}; fixed totals {statics:.0?}; decisions {:?}",
        led.limits
    );
    assert!(rate >= 0.9 * best, "{report}");
    assert!(writers <= best_total + 4, "{report}");
    assert_eq!(led.writer_reversals_since(from_s), 0, "{report}");
    // Each process alone grows into the others' slowdown: a tug of war the leader
    // does not have.
    assert!(alone_writers >= 2 * writers, "{report}");
    assert!(rate >= 1.15 * alone_rate, "{report}");
}

#[test]
fn every_process_holds_its_share_of_the_leaders_total() {
    let run = Fleet::new(&scenario(Coordination::Leader), adaptive, "adaptive").run();
    let (_, total, _) = run.limits.last().cloned().expect("the leader decided");
    let last: Vec<usize> = run
        .processes
        .iter()
        .map(|p| *p.series.last().unwrap().workers.last().unwrap())
        .collect();
    assert_eq!(last.iter().sum::<usize>(), total, "{last:?}");
    assert!(
        last.iter().max().unwrap() - last.iter().min().unwrap() <= 1,
        "{last:?}"
    );
}

#[test]
fn a_scenario_without_a_fleet_runs_as_one_simulation_does() {
    let mut one = scenario(Coordination::None);
    one.fleet = None;
    let alone = Simulation::new(&one, adaptive(), "adaptive").run();
    let fleet = Fleet::new(&one, adaptive, "adaptive").run();
    assert_eq!(fleet.processes.len(), 1);
    assert_eq!(fleet.processes[0].completed, alone.completed);
    assert_eq!(fleet.processes[0].series, alone.series);
}
