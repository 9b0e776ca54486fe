//! The unit parsers against what they promise, on every input proptest draws: sizes and
//! durations written in each unit read back as written (within the stated rounding),
//! `format_bytes` reads back within its one decimal, and no text makes them panic or
//! gives a duration a `std::time::Duration` cannot hold.

use std::time::Duration;

use brigade_controller::units::{format_bytes, parse_duration, parse_size, UnitError};
use proptest::prelude::*;

/// Size units and their bytes (`""`: a plain byte count).
const SIZE_UNITS: [(&str, u64); 6] = [
    ("", 1),
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Duration units and how many of them make a second.
const DURATION_UNITS: [(&str, f64); 5] = [
    ("us", 1e6),
    ("ms", 1e3),
    ("s", 1.0),
    ("m", 1.0 / 60.0),
    ("h", 1.0 / 3600.0),
];

/// 2^64, the first size and the first number of seconds refused as too large.
const TWO_TO_64: f64 = 18_446_744_073_709_551_616.0;

/// Texts shaped like units, near misses included, beside arbitrary strings.
fn unit_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{0,22}(\\.[0-9]{0,22})?(us|ms|s|m|h|B|KiB|MiB|GiB|TiB|kib|MB| s|e3)?",
    ]
}

proptest! {
    #[test]
    fn whole_sizes_read_back_exactly_or_too_large(count: u64, unit in 0..SIZE_UNITS.len()) {
        let (name, bytes_per_unit) = SIZE_UNITS[unit];
        let text = format!("{count}{name}");
        let expected = count
            .checked_mul(bytes_per_unit)
            .ok_or_else(|| UnitError::TooLarge(text.clone()));
        prop_assert_eq!(parse_size(&text), expected);
    }

    #[test]
    fn fractional_sizes_read_back_to_the_nearest_byte(
        bytes in 0u64..1 << 52,
        unit in 2..SIZE_UNITS.len(),
        decimals in 1..8usize,
    ) {
        let (name, bytes_per_unit) = SIZE_UNITS[unit];
        let text = format!("{:.decimals$}{name}", bytes as f64 / bytes_per_unit as f64);
        let read = parse_size(&text).unwrap();
        // Written to `decimals` places, then rounded to the byte: both halves of a step,
        // plus a byte for the floating point below 2^52.
        let slack = 0.5 * bytes_per_unit as f64 / 10f64.powi(decimals as i32) + 1.0;
        prop_assert!((read as f64 - bytes as f64).abs() <= slack, "{text} read as {read}");
    }

    #[test]
    fn format_bytes_reads_back_within_its_one_decimal(bytes: u64) {
        let written = format_bytes(bytes);
        let (number, unit) = written.split_once(' ').unwrap();
        let bytes_per_unit = SIZE_UNITS.iter().find(|(name, _)| *name == unit).unwrap().1;
        let slack = 0.05 * bytes_per_unit as f64 + 0.5;
        // Without the space, which people write and the parser refuses.
        match parse_size(&format!("{number}{unit}")) {
            Ok(read) => prop_assert!(
                (read as f64 - bytes as f64).abs() <= slack,
                "{bytes} written {written}, read {read}"
            ),
            // Only the very top rounds up to 2^64.
            Err(error) => prop_assert!(bytes as f64 + slack >= TWO_TO_64, "{written}: {error}"),
        }
    }

    #[test]
    fn whole_durations_read_back_exactly(count in 0u64..1 << 40, unit in 2..DURATION_UNITS.len()) {
        let (name, per_second) = DURATION_UNITS[unit];
        let seconds = parse_duration(&format!("{count}{name}")).unwrap();
        prop_assert_eq!(seconds, count as f64 * (1.0 / per_second).round());
    }

    #[test]
    fn durations_read_back_in_every_unit(seconds in 0.0f64..1e15, unit in 0..DURATION_UNITS.len()) {
        let (name, per_second) = DURATION_UNITS[unit];
        // An f64's Display is the shortest text that reads back as it, never an exponent.
        let text = format!("{}{name}", seconds * per_second);
        let read = parse_duration(&text).unwrap();
        prop_assert!(
            (read - seconds).abs() <= 4.0 * f64::EPSILON * seconds,
            "{seconds} s written {text}, read {read}"
        );
    }

    #[test]
    fn durations_of_2_to_the_64_seconds_or_more_are_too_large(seconds in TWO_TO_64..1e300) {
        let text = format!("{seconds}s");
        prop_assert_eq!(parse_duration(&text), Err(UnitError::TooLarge(text.clone())));
    }

    #[test]
    fn no_text_makes_them_panic(text in unit_like()) {
        if let Ok(seconds) = parse_duration(&text) {
            prop_assert!(seconds >= 0.0, "{text:?} read as {seconds}");
            prop_assert!(Duration::try_from_secs_f64(seconds).is_ok(), "{text:?}: {seconds} s");
        }
        if let Ok(bytes) = parse_size(&text) {
            prop_assert!(!format_bytes(bytes).is_empty());
        }
    }
}
