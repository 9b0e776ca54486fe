//! Replays the scenario fuzzer's kept corpus (`fuzz/corpus/scenario/`, see
//! `fuzz/README.md`) through the parser, so that CI guards every input the fuzzer found
//! interesting, the ones that once crashed it included, without AFL++: each must parse
//! or fail with an error naming the file, never panic, and every duration of a scenario
//! that parses must fit a `std::time::Duration`.

use std::path::Path;
use std::time::Duration;

use brigade_scenario::parse_str;

#[test]
fn every_input_of_the_fuzz_corpus_parses_or_is_refused() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scenario");
    let mut inputs = 0;
    let mut accepted = 0;
    for entry in std::fs::read_dir(&corpus).unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
    {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        inputs += 1;
        // The fuzz target skips what is not UTF-8, as `load` refuses it.
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let name = path.display().to_string();
        match parse_str(text, &name) {
            Ok(scenario) => {
                accepted += 1;
                let durations = [
                    scenario.duration_s,
                    scenario.tick_s,
                    scenario.source.reconnect_s,
                ]
                .into_iter()
                .chain(scenario.source.idle_timeout_s);
                for seconds in durations {
                    assert!(
                        Duration::try_from_secs_f64(seconds).is_ok(),
                        "{name}: accepted a duration of {seconds} s"
                    );
                }
            }
            Err(error) => assert_eq!(error.file(), name, "{error}"),
        }
    }
    assert!(inputs >= 50, "only {inputs} inputs in {}", corpus.display());
    assert!(accepted > 0, "no input of {} parses", corpus.display());
}
