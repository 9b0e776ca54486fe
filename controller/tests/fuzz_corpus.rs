//! Replays the unit fuzzer's kept corpus (`fuzz/corpus/units/`, see `fuzz/README.md`)
//! through the unit parsers, so that CI guards every input the fuzzer found interesting
//! without AFL++: none may panic, and every duration read must fit a
//! `std::time::Duration`.

use std::path::Path;
use std::time::Duration;

use brigade_controller::units::{format_bytes, parse_duration, parse_size};

#[test]
fn no_input_of_the_fuzz_corpus_breaks_the_unit_parsers() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/units");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&corpus).unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
    {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        inputs += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Ok(seconds) = parse_duration(text) {
            assert!(
                seconds >= 0.0 && Duration::try_from_secs_f64(seconds).is_ok(),
                "{}: {text:?} read as {seconds} s",
                path.display()
            );
        }
        if let Ok(bytes) = parse_size(text) {
            assert!(!format_bytes(bytes).is_empty());
        }
    }
    assert!(inputs >= 20, "only {inputs} inputs in {}", corpus.display());
}
