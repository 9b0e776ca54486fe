//! Searches the oracle of each scenario file given and prints what it found and what
//! the search cost: `cargo run --release -p brigade-sim --example oracle -- FILE...`.

use std::time::Instant;

use brigade_scenario as scenario;
use brigade_sim::oracle;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let scenario = scenario::load(path.as_ref())?;
        let started = Instant::now();
        let oracle = oracle::search(&scenario);
        let wall = started.elapsed().as_secs_f64();
        let config = &oracle.config;
        let mib = |bytes: Option<u64>| {
            bytes.map_or("-".to_owned(), |b| {
                format!("{:.0} MiB", b as f64 / 1048576.0)
            })
        };
        println!(
            "{}: workers {:?} queue {} batch {} budget {} threshold {} | {:.1} rec/s, \
             {:.0} worker-s, failed {} | {} evaluations in {wall:.1} s",
            scenario.name,
            config.workers,
            config.queue_capacity,
            config.batch_size,
            mib(config.memory_budget),
            mib(config.serial_threshold),
            oracle.run.throughput(),
            oracle.run.worker_seconds,
            oracle.run.failed(),
            oracle.evaluations,
        );
    }
    Ok(())
}
