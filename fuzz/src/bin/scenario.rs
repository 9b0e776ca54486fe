//! Fuzz target: the scenario file parser, `brigade_scenario::parse_str`, on any
//! text. It must return a scenario or an error naming the file, never panic; and every
//! duration of a scenario it accepts must fit a `std::time::Duration`, as the synthetic
//! run converts them.

use std::time::Duration;

use brigade_scenario::parse_str;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match parse_str(text, "fuzz.toml") {
            Ok(scenario) => {
                let mut durations = vec![scenario.duration_s, scenario.tick_s];
                durations.extend(scenario.source.idle_timeout_s);
                durations.push(scenario.source.reconnect_s);
                for seconds in durations {
                    assert!(
                        Duration::try_from_secs_f64(seconds).is_ok(),
                        "accepted a duration of {seconds} s"
                    );
                }
            }
            Err(error) => assert!(error.to_string().contains("fuzz.toml"), "{error}"),
        }
    });
}
