//! Fuzz target: the pipeline file reader, `brigade_connectors::pipeline::parse`, on any
//! text. It must return a pipeline or errors that each name the file, never panic; a
//! pipeline it accepts has its workers in order (min ≤ initial ≤ max) and positive
//! backoffs, as the runtime requires before it starts.

use std::path::Path;

use brigade_connectors::pipeline::parse;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match parse(text, Path::new("fuzz.toml")) {
            Ok(spec) => {
                let settings = spec
                    .stages
                    .iter()
                    .map(|stage| &stage.settings)
                    .chain([&spec.sink.settings]);
                for s in settings {
                    assert!(1 <= s.min && s.min <= s.initial && s.initial <= s.max, "{s:?}");
                }
                let retry = &spec.runtime.retry;
                assert!(retry.initial_backoff <= retry.max_backoff, "{retry:?}");
            }
            Err(errors) => {
                assert!(!errors.0.is_empty());
                for error in &errors.0 {
                    assert_eq!(error.file, "fuzz.toml", "{error}");
                }
            }
        }
    });
}
