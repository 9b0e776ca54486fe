//! The runtime pipeline of a scenario: its source, one synthetic stage per
//! `[[stage]]` (fallible flat maps, then a fallible sink or batching sink), and the
//! `[runtime]` knobs, tick and policy.

use std::sync::Arc;
use std::time::Duration;

use brigade_controller::Controller;
use brigade_runtime::{Pipeline, SpillConfig};
use brigade_scenario::Scenario;

use crate::clock::Clock;
use crate::source::{Idle, SyntheticSource};
use crate::stage::Stage;

/// `scenario` as a pipeline on `clock`, its source timing out on `idle`, steered by
/// `policy`.
pub(crate) fn build(
    scenario: &Scenario,
    clock: &Arc<Clock>,
    idle: &Arc<Idle>,
    policy: Box<dyn Controller>,
) -> Pipeline {
    let runtime = &scenario.runtime;
    let initial = runtime.initial_workers.min(runtime.max_workers).max(1);
    let source = SyntheticSource::new(scenario, clock.clone(), idle.clone());
    // `[runtime] spill`: the guard's reads the budget cannot hold wait on this disk.
    let reading = match runtime.spill {
        Some(capacity) => Pipeline::from_source_with_spill(
            source,
            SpillConfig::new(std::env::temp_dir(), capacity),
        ),
        None => Pipeline::from_source(source),
    };
    let mut builder = reading
        .tick(Duration::from_secs_f64(scenario.tick_s))
        .default_queue_capacity(runtime.queue_capacity)
        .default_max_workers(runtime.max_workers)
        .controller(policy);
    if let Some(budget) = runtime.memory_budget {
        builder = builder.memory_budget(budget);
    }
    let last = scenario.stages.len() - 1;
    for (index, spec) in scenario.stages[..last].iter().enumerate() {
        let stage = Stage::new(scenario, index, clock.clone());
        builder = builder
            .try_flat_map(&spec.name, move |record, out| stage.transform(record, out))
            .initial_workers(initial);
    }
    let spec = &scenario.stages[last];
    let sink = Stage::new(scenario, last, clock.clone());
    let pipeline = if spec.batch {
        builder.try_batch_sink(&spec.name, move |batch| sink.write_batch(batch))
    } else {
        builder.try_sink(&spec.name, move |record| sink.write(record))
    };
    pipeline
        .initial_workers(initial)
        .batch_size(runtime.batch_size)
}
