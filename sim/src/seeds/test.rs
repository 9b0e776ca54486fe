use super::*;
use brigade_scenario::parse_str;

/// One io stage with a long-tailed service time, so that each seed draws other
/// calls, and contention that peaks at a few calls; short, so that a sweep of a few
/// seeds with its oracle searches runs in a moment.
fn scenario() -> Scenario {
    parse_str(
        r#"
        name = "tail"
        duration = "20s"
        seed = 7
        [source]
        rate = 1000
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "write"
        kind = "io"
        service = { dist = "lognormal", median = "5ms", p99 = "80ms" }
        coherency = 0.04
        "#,
        "tail.toml",
    )
    .expect("the test scenario parses")
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|&name| name.to_owned()).collect()
}

#[test]
fn each_seed_runs_the_whole_experiment_against_its_own_oracle() {
    let sc = scenario();
    let policies = names(&["static", "adaptive"]);
    let sweep = run(&sc, &policies, &[3, 1, 2]).unwrap();
    assert_eq!(sweep.scenario, "tail");
    assert_eq!(sweep.file_seed, 7);
    let seeds: Vec<u64> = sweep.seeds.iter().map(|s| s.seed).collect();
    assert_eq!(seeds, [3, 1, 2], "in the order asked");
    for seed in &sweep.seeds {
        let alone = experiment::run(
            &Scenario {
                seed: seed.seed,
                ..sc.clone()
            },
            &policies,
        )
        .unwrap();
        assert_eq!(seed.report, alone.report, "seed {}", seed.seed);
    }
    let oracles: Vec<f64> = sweep
        .seeds
        .iter()
        .map(|s| s.report.oracle.throughput)
        .collect();
    assert!(
        oracles[0] != oracles[1] && oracles[1] != oracles[2],
        "other seeds, other draws: {oracles:?}"
    );
}

#[test]
fn the_file_seed_is_one_seed_among_others() {
    let sc = scenario();
    let policies = names(&["adaptive"]);
    let sweep = run(&sc, &policies, &[7]).unwrap();
    let plain = experiment::run(&sc, &policies).unwrap();
    assert_eq!(sweep.seeds[0].report, plain.report);
}

#[test]
fn an_unknown_policy_is_refused_before_anything_runs() {
    let error = run(&scenario(), &names(&["seda", "fastest"]), &[1, 2]).unwrap_err();
    assert_eq!(error.name, "fastest");
}

#[test]
fn spreads_count_failures_and_first_places_per_policy() {
    let sc = scenario();
    let sweep = run(
        &sc,
        &names(&["static", "static:4", "adaptive"]),
        &[1, 2, 3, 4],
    )
    .unwrap();
    let spreads = sweep.spreads();
    let policies: Vec<&str> = spreads.iter().map(|s| s.policy.as_str()).collect();
    assert_eq!(policies, ["static", "static:4", "adaptive"]);
    for (i, spread) in spreads.iter().enumerate() {
        let vs: Vec<f64> = sweep
            .seeds
            .iter()
            .map(|s| s.report.runs[i].vs_oracle)
            .collect();
        assert_eq!(spread.vs_oracle, Spread::of(vs.iter().copied()));
        assert_eq!(
            spread.failed,
            sweep
                .seeds
                .iter()
                .filter(|s| s.report.runs[i].failed)
                .count()
        );
    }
    let firsts: usize = spreads.iter().map(|s| s.first).sum();
    assert_eq!(firsts, 4, "one policy ranks first on every seed");
    // One worker against a stage that peaks at a few: never first.
    assert_eq!(spreads[0].first, 0);
    assert!(spreads[0].vs_oracle.highest < 0.5, "{spreads:?}");
}

#[test]
fn a_spread_gives_the_middle_value_or_the_mean_of_the_middle_two() {
    let odd = Spread::of([0.9, 0.5, 1.0].into_iter());
    assert_eq!(
        odd,
        Spread {
            lowest: 0.5,
            median: 0.9,
            highest: 1.0
        }
    );
    let even = Spread::of([1.0, 0.2, 0.6, 0.8].into_iter());
    assert_eq!(even.median, 0.7);
    assert_eq!((even.lowest, even.highest), (0.2, 1.0));
    assert_eq!(Spread::of(std::iter::empty()).median, 0.0);
}
