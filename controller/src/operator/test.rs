use super::*;

/// A pipeline of three stages whose last is a batching sink; pools hold 1 to 16
/// workers, and stage 0 refuses threads when `refuse` is set.
#[derive(Debug, Default)]
struct Model {
    workers: [usize; 3],
    capacity: [usize; 3],
    batch: [usize; 3],
    concurrency: [Option<usize>; 3],
    rate: [Option<f64>; 3],
    serial: Option<u64>,
    budget: Option<u64>,
    refuse: bool,
}

impl Actuator for Model {
    fn stages(&self) -> usize {
        3
    }
    fn stage_name(&self, stage: usize) -> String {
        ["decode", "enrich", "write"][stage].into()
    }
    fn takes_batches(&self, stage: usize) -> bool {
        stage == 2
    }
    fn set_workers(&mut self, stage: usize, workers: usize) -> Result<usize, String> {
        if self.refuse && stage == 0 {
            return Err("the system refused a worker thread".into());
        }
        self.workers[stage] = workers.clamp(1, 16);
        Ok(self.workers[stage])
    }
    fn set_queue_capacity(&mut self, stage: usize, capacity: usize) {
        self.capacity[stage] = capacity;
    }
    fn set_batch_size(&mut self, stage: usize, size: usize) {
        self.batch[stage] = size;
    }
    fn set_concurrency_limit(&mut self, stage: usize, limit: Option<usize>) {
        self.concurrency[stage] = limit;
    }
    fn set_rate_limit(&mut self, stage: usize, per_second: Option<f64>) {
        self.rate[stage] = per_second;
    }
    fn set_serial_threshold(&mut self, bytes: Option<u64>) {
        self.serial = bytes;
    }
    fn set_memory_budget(&mut self, bytes: Option<u64>) {
        self.budget = bytes;
    }
}

fn ignored(outcome: Outcome) -> String {
    match outcome {
        Outcome::Ignored { why } => why,
        other => panic!("expected an ignored action, got {other:?}"),
    }
}

#[test]
fn a_count_past_the_pool_is_clamped_and_says_to_what() {
    let mut model = Model::default();
    let operator = Operator::new(3, None);
    let outcome = operator.apply(
        &Action::SetWorkers {
            stage: 1,
            workers: 40,
        },
        &mut model,
    );
    assert_eq!(outcome, Outcome::Clamped { value: 16 });
    assert_eq!(model.workers[1], 16);
    let outcome = operator.apply(
        &Action::SetWorkers {
            stage: 1,
            workers: 4,
        },
        &mut model,
    );
    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(model.workers[1], 4);
}

#[test]
fn counts_below_one_are_set_as_one() {
    let mut model = Model::default();
    let operator = Operator::new(3, None);
    let workers = operator.apply(
        &Action::SetWorkers {
            stage: 0,
            workers: 0,
        },
        &mut model,
    );
    let capacity = operator.apply(
        &Action::SetQueueCapacity {
            stage: 0,
            capacity: 0,
        },
        &mut model,
    );
    let batch = operator.apply(&Action::SetBatchSize { stage: 2, size: 0 }, &mut model);
    assert_eq!(workers, Outcome::Clamped { value: 1 });
    assert_eq!(capacity, Outcome::Clamped { value: 1 });
    assert_eq!(batch, Outcome::Clamped { value: 1 });
    assert_eq!(
        (model.workers[0], model.capacity[0], model.batch[2]),
        (1, 1, 1)
    );
}

#[test]
fn an_unknown_stage_or_a_batch_for_a_stage_without_batches_changes_nothing() {
    let mut model = Model::default();
    let operator = Operator::new(3, None);
    let why = ignored(operator.apply(
        &Action::SetWorkers {
            stage: 3,
            workers: 2,
        },
        &mut model,
    ));
    assert_eq!(why, "no stage 3: the pipeline has 3 stages");
    let why = ignored(operator.apply(&Action::SetBatchSize { stage: 1, size: 50 }, &mut model));
    assert_eq!(why, "enrich does not take batches");
    assert_eq!(model.batch, [0, 0, 0]);
}

#[test]
fn a_refused_thread_is_ignored_with_the_actuators_reason() {
    let mut model = Model {
        refuse: true,
        ..Model::default()
    };
    let operator = Operator::new(3, None);
    let why = ignored(operator.apply(
        &Action::SetWorkers {
            stage: 0,
            workers: 3,
        },
        &mut model,
    ));
    assert_eq!(why, "the system refused a worker thread");
}

#[test]
fn a_pinned_stage_keeps_its_workers_until_unpinned() {
    let mut model = Model::default();
    let mut operator = Operator::new(3, None);
    let pin = operator.operate(
        Override::PinWorkers {
            stage: 1,
            workers: 5,
        },
        &mut model,
    );
    assert_eq!(
        pin,
        Some(Operated {
            action: Action::SetWorkers {
                stage: 1,
                workers: 5
            },
            reason: "operator pinned 5 workers".into(),
            outcome: Outcome::Applied,
        })
    );
    let grow = Action::SetWorkers {
        stage: 1,
        workers: 9,
    };
    let why = ignored(operator.apply(&grow, &mut model));
    assert_eq!(why, "stage 1 is pinned by the operator");
    assert_eq!(model.workers[1], 5);
    // The operator may move a pinned stage; a configuration may too.
    operator.operate(
        Override::PinWorkers {
            stage: 1,
            workers: 7,
        },
        &mut model,
    );
    assert_eq!(model.workers[1], 7);
    assert_eq!(operator.configure(&grow, &mut model), Outcome::Applied);
    assert_eq!(model.workers[1], 9);
    // Other knobs of a pinned stage still move.
    let queue = Action::SetQueueCapacity {
        stage: 1,
        capacity: 32,
    };
    assert_eq!(operator.apply(&queue, &mut model), Outcome::Applied);
    assert_eq!(
        operator.operate(Override::Unpin { stage: 1 }, &mut model),
        None
    );
    assert_eq!(operator.apply(&grow, &mut model), Outcome::Applied);
    assert!(!operator.is_pinned(1));
}

#[test]
fn a_policy_budget_never_rises_above_the_operators() {
    let mut model = Model::default();
    let mut operator = Operator::new(3, None);
    let set = operator.operate(Override::SetBudget { bytes: Some(1_000) }, &mut model);
    assert_eq!(set.map(|set| set.outcome), Some(Outcome::Applied));
    assert_eq!(model.budget, Some(1_000));
    let above = Action::SetMemoryBudget { bytes: Some(5_000) };
    assert_eq!(
        operator.apply(&above, &mut model),
        Outcome::Clamped { value: 1_000 }
    );
    let below = Action::SetMemoryBudget { bytes: Some(600) };
    assert_eq!(operator.apply(&below, &mut model), Outcome::Applied);
    assert_eq!(model.budget, Some(600));
    // A policy that drops its own cap falls back to the operator's.
    let none = Action::SetMemoryBudget { bytes: None };
    assert_eq!(operator.apply(&none, &mut model), Outcome::Applied);
    assert_eq!(model.budget, Some(1_000));
    operator.operate(Override::SetBudget { bytes: None }, &mut model);
    assert_eq!(operator.apply(&above, &mut model), Outcome::Applied);
    assert_eq!(model.budget, Some(5_000));
}

#[test]
fn pause_and_resume_change_no_knob() {
    let mut model = Model::default();
    let mut operator = Operator::new(3, None);
    assert_eq!(operator.operate(Override::Pause, &mut model), None);
    assert!(operator.is_paused());
    assert_eq!(operator.operate(Override::Resume, &mut model), None);
    assert!(!operator.is_paused());
    assert_eq!(model.workers, [0, 0, 0]);
}

#[test]
fn limits_of_zero_mean_none() {
    let mut model = Model::default();
    let operator = Operator::new(3, None);
    let limit = Action::SetConcurrencyLimit {
        stage: 2,
        limit: Some(0),
    };
    assert_eq!(operator.apply(&limit, &mut model), Outcome::Applied);
    assert_eq!(model.concurrency[2], None);
    let limit = Action::SetConcurrencyLimit {
        stage: 2,
        limit: Some(3),
    };
    operator.apply(&limit, &mut model);
    assert_eq!(model.concurrency[2], Some(3));
}
