//! Replays the pipeline-file fuzzer's kept corpus (`fuzz/corpus/pipeline/`, see
//! `fuzz/README.md`) through the reader, so that CI guards every input the fuzzer
//! found interesting without AFL++: each must parse, with its workers in order and its
//! backoffs ordered, or fail with errors that each name the file; never panic.

use std::path::Path;

use brigade_connectors::pipeline::parse;

#[test]
fn every_input_of_the_fuzz_corpus_parses_or_is_refused_naming_the_file() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pipeline");
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
        match parse(text, &path) {
            Ok(spec) => {
                accepted += 1;
                let settings = spec
                    .stages
                    .iter()
                    .map(|stage| &stage.settings)
                    .chain([&spec.sink.settings]);
                for s in settings {
                    assert!(
                        1 <= s.min && s.min <= s.initial && s.initial <= s.max,
                        "{s:?}"
                    );
                }
                let retry = &spec.runtime.retry;
                assert!(retry.initial_backoff <= retry.max_backoff, "{retry:?}");
            }
            Err(errors) => {
                assert!(!errors.0.is_empty(), "{}", path.display());
                for error in &errors.0 {
                    assert_eq!(error.file, path.display().to_string(), "{error}");
                }
            }
        }
    }
    assert!(inputs >= 10, "only {inputs} inputs in {}", corpus.display());
    assert!(accepted > 0, "no input of {} parses", corpus.display());
}
