//! How long the simulator takes for one run of the default policy.
//!
//! `sim/shapefile_etl`: the `adaptive` policy through `scenarios/shapefile-etl.toml`
//! (30 virtual minutes, 1.5 million records, giants), from t = 0 to the end. The
//! scenario is parsed once, outside the timed loop; the oracle search is not included.

use std::path::Path;
use std::time::Duration;

use brigade_controller::from_name;
use brigade_scenario as scenario;
use brigade_sim::Simulation;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

const POLICY: &str = "adaptive";

fn shapefile_etl(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/shapefile-etl.toml");
    let scenario = scenario::load(&path).expect("the shipped scenario parses");
    let mut group = c.benchmark_group("sim");
    // One run takes about a second: ten samples of the same few runs each, not the
    // 1 + 2 + ... + 10 runs of linear sampling.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("shapefile_etl", |b| {
        b.iter(|| {
            let policy = from_name(POLICY).expect("the policy exists");
            Simulation::new(&scenario, policy, POLICY).run()
        });
    });
    group.finish();
}

criterion_group!(benches, shapefile_etl);
criterion_main!(benches);
