//! Fuzz target: the unit parsers of `brigade_controller::units` on any text. Durations
//! must come back finite, not negative and within a `std::time::Duration` (the CLI's
//! `--duration` converts them); sizes must format back; neither may panic.

use std::time::Duration;

use brigade_controller::units::{format_bytes, parse_duration, parse_size};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(seconds) = parse_duration(text) {
            assert!(seconds >= 0.0, "{text:?} gave {seconds} s");
            assert!(
                Duration::try_from_secs_f64(seconds).is_ok(),
                "{text:?} gave {seconds} s, too long for a Duration"
            );
        }
        if let Ok(bytes) = parse_size(text) {
            assert!(!format_bytes(bytes).is_empty());
        }
    });
}
