//! The operator's overrides, applied and logged as the runtime's control loop applies
//! and logs them: pins, unpin, pause and resume, the budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use brigade_controller::{Action, Controller, Decision, Outcome, Override, Snapshot};

use super::{Simulation, TickOutput};
use brigade_scenario::{self as scenario, Scenario};

const KIB: u64 = 1024;

/// Two stages, `max_workers = 8`, records of 1 KiB: enough to keep both busy.
fn scenario() -> Scenario {
    scenario::parse_str(
        r#"name = "operated"
duration = "60s"

[runtime]
max_workers = 8

[source]
rate = 400
size = { dist = "fixed", value = "1KiB" }

[[stage]]
name = "work"
kind = "cpu"
service = { dist = "fixed", value = "5ms" }

[[stage]]
name = "store"
kind = "io"
service = { dist = "fixed", value = "8ms" }
"#,
        "operated.toml",
    )
    .expect("the scenario parses")
}

/// Asks for the same actions at every tick, and counts the ticks it was asked at.
struct Asks {
    actions: Vec<Action>,
    asked: Arc<AtomicUsize>,
}

impl Controller for Asks {
    fn name(&self) -> &str {
        "asks"
    }

    fn decide(&mut self, _: &Snapshot) -> Vec<Decision> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        self.actions
            .iter()
            .map(|&action| Decision::new(action, "asked"))
            .collect()
    }
}

/// A simulation of [`scenario`] whose policy asks for `actions` at every tick, and the
/// count of the ticks it was asked at.
fn simulation(actions: Vec<Action>) -> (Simulation, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let policy = Asks {
        actions,
        asked: asked.clone(),
    };
    let simulation = Simulation::new(&scenario(), Box::new(policy), "asks");
    (simulation, asked)
}

fn step(simulation: &mut Simulation) -> TickOutput {
    simulation.step().expect("the run goes on")
}

/// Who made each decision of a tick, and what became of it.
fn outcomes(tick: &TickOutput) -> Vec<(&str, &Outcome)> {
    tick.decisions
        .iter()
        .map(|record| (record.by.as_str(), &record.outcome))
        .collect()
}

fn ignored_as_pinned(stage: usize) -> Outcome {
    Outcome::Ignored {
        why: format!("stage {stage} is pinned by the operator"),
    }
}

#[test]
fn a_pin_holds_the_workers_and_the_policy_is_ignored_on_that_stage() {
    let wants_six = Action::SetWorkers {
        stage: 0,
        workers: 6,
    };
    let (mut simulation, _) = simulation(vec![wants_six]);
    step(&mut simulation);
    simulation.operate(Override::PinWorkers {
        stage: 0,
        workers: 3,
    });

    let tick = step(&mut simulation);
    let pin = &tick.decisions[0];
    assert_eq!((pin.by.as_str(), pin.tick), ("operator", 1));
    assert_eq!(pin.decision.reason, "operator pinned 3 workers");
    assert_eq!(
        pin.decision.action,
        Action::SetWorkers {
            stage: 0,
            workers: 3
        }
    );
    assert_eq!(
        outcomes(&tick),
        [
            ("operator", &Outcome::Applied),
            ("asks", &ignored_as_pinned(0))
        ]
    );
    for _ in 0..3 {
        let tick = step(&mut simulation);
        let work = &tick.snapshot.stages[0].workers;
        assert!(work.pinned);
        assert_eq!((work.live, work.target), (3, 3));
        assert_eq!(tick.snapshot.knobs.stages[0].workers, 3);
        assert!(!tick.snapshot.stages[1].workers.pinned);
        assert_eq!(outcomes(&tick), [("asks", &ignored_as_pinned(0))]);
    }
    let run = simulation.finish();
    assert_eq!(run.changes, 1, "the policy's one change before the pin");
    assert_eq!(
        run.decisions.iter().filter(|d| d.by == "operator").count(),
        1
    );
}

#[test]
fn a_pin_is_clamped_like_any_change_and_a_missing_stage_is_ignored() {
    let (mut simulation, _) = simulation(Vec::new());
    step(&mut simulation);
    simulation.operate(Override::PinWorkers {
        stage: 1,
        workers: 20,
    });
    simulation.operate(Override::PinWorkers {
        stage: 5,
        workers: 2,
    });
    let tick = step(&mut simulation);
    assert_eq!(
        outcomes(&tick),
        [
            ("operator", &Outcome::Clamped { value: 8 }),
            (
                "operator",
                &Outcome::Ignored {
                    why: "no stage 5: the pipeline has 2 stages".into()
                }
            ),
        ]
    );
    assert_eq!(tick.decisions[1].decision.reason, "operator pin");
    assert!(tick.snapshot.stages[1].workers.pinned);
    assert_eq!(tick.snapshot.stages[1].workers.target, 8);
}

#[test]
fn unpin_gives_the_stage_back_to_the_policy() {
    let wants_six = Action::SetWorkers {
        stage: 0,
        workers: 6,
    };
    let (mut simulation, _) = simulation(vec![wants_six]);
    simulation.operate(Override::PinWorkers {
        stage: 0,
        workers: 2,
    });
    step(&mut simulation);
    simulation.operate(Override::Unpin { stage: 0 });
    simulation.operate(Override::Unpin { stage: 9 });

    let tick = step(&mut simulation);
    assert_eq!(outcomes(&tick), [("asks", &Outcome::Applied)]);
    assert!(!tick.snapshot.stages[0].workers.pinned);
    let tick = step(&mut simulation);
    assert_eq!(tick.snapshot.stages[0].workers.target, 6);
    assert_eq!(tick.snapshot.knobs.stages[0].workers, 6);
}

#[test]
fn a_paused_policy_is_not_consulted_while_windows_still_close() {
    let (mut simulation, asked) = simulation(vec![Action::SetQueueCapacity {
        stage: 1,
        capacity: 32,
    }]);
    step(&mut simulation);
    assert_eq!(asked.load(Ordering::Relaxed), 1);
    simulation.operate(Override::Pause);
    for tick in 2..=4 {
        let output = step(&mut simulation);
        assert_eq!(output.snapshot.tick, tick);
        assert!(output.snapshot.paused);
        assert!(output.decisions.is_empty());
        assert!(output.snapshot.stages[1].records_out > 0);
    }
    assert_eq!(asked.load(Ordering::Relaxed), 1);

    simulation.operate(Override::Resume);
    let output = step(&mut simulation);
    assert!(!output.snapshot.paused);
    assert_eq!(outcomes(&output), [("asks", &Outcome::Applied)]);
    assert_eq!(asked.load(Ordering::Relaxed), 2);
}

#[test]
fn the_operator_budget_caps_the_policy_and_bytes_in_flight() {
    let (mut simulation, _) = simulation(vec![Action::SetMemoryBudget {
        bytes: Some(512 * KIB),
    }]);
    let tick = step(&mut simulation);
    assert_eq!(outcomes(&tick), [("asks", &Outcome::Applied)]);
    assert_eq!(tick.snapshot.global.memory_budget, None);

    simulation.operate(Override::SetBudget {
        bytes: Some(8 * KIB),
    });
    let tick = step(&mut simulation);
    let set = &tick.decisions[0];
    assert_eq!(set.decision.reason, "operator set the memory budget");
    assert_eq!(
        set.decision.action,
        Action::SetMemoryBudget {
            bytes: Some(8 * KIB)
        }
    );
    assert_eq!(
        outcomes(&tick),
        [
            ("operator", &Outcome::Applied),
            ("asks", &Outcome::Clamped { value: 8 * KIB })
        ]
    );
    for _ in 0..3 {
        let tick = step(&mut simulation);
        assert_eq!(tick.snapshot.global.memory_budget, Some(8 * KIB));
        assert_eq!(tick.snapshot.knobs.memory_budget, Some(8 * KIB));
        assert!(tick.snapshot.global.inflight_bytes_max <= 8 * KIB);
        assert!(tick.snapshot.stages[1].records_out > 0);
    }

    simulation.operate(Override::SetBudget { bytes: None });
    let tick = step(&mut simulation);
    assert_eq!(
        outcomes(&tick),
        [("operator", &Outcome::Applied), ("asks", &Outcome::Applied)]
    );
    let tick = step(&mut simulation);
    assert_eq!(tick.snapshot.global.memory_budget, Some(512 * KIB));
}
