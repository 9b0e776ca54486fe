//! Durations and sizes as people write them, in scenario files, on the command line
//! and in the daemon's control endpoints: durations (`"250us"`, `"4ms"`, `"1.5s"`,
//! `"10m"`, `"1h"`) and sizes (`"512B"`, `"8KiB"`, `"1.5MiB"`, `"2GiB"`, `"1TiB"`, or a
//! plain byte count). A number is digits with an optional fraction (`1.5`), directly
//! followed by its unit; no exponent, no space, no other unit. [`format_bytes`] writes
//! sizes back for people to read.

use std::time::Duration;

use thiserror::Error;

/// Why a duration or a size could not be read; each names what was given.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum UnitError {
    /// Not a number followed by a duration unit.
    #[error(
        "expected a duration: a number and one of the units us, ms, s, m, h \
         (like \"250us\", \"1.5s\" or \"10m\"), got {0:?}"
    )]
    Duration(String),
    /// Neither a byte count nor a number followed by a size unit.
    #[error(
        "expected a size: a byte count or a number and one of the units B, KiB, MiB, \
         GiB, TiB (like \"512B\" or \"1.5MiB\"), got {0:?}"
    )]
    Size(String),
    /// A well-formed but negative quantity.
    #[error("must not be negative, got {0:?}")]
    Negative(String),
    /// A size of 2^64 bytes or more, or a duration of 2^64 seconds or more (longer
    /// than a [`std::time::Duration`] holds).
    #[error("too large, got {0:?}")]
    TooLarge(String),
}

/// Reads a duration such as `"250us"`, `"4ms"`, `"1.5s"`, `"10m"` or `"1h"` into
/// seconds. A plain number is not a duration: the unit is required. Every duration it
/// returns fits a [`Duration`] (`Duration::from_secs_f64` takes it without panicking).
pub fn parse_duration(text: &str) -> Result<f64, UnitError> {
    let malformed = || UnitError::Duration(text.to_owned());
    let (number, unit) = split(text).ok_or_else(malformed)?;
    let value: f64 = number.parse().map_err(|_| malformed())?;
    // Dividing by an exact power of ten turns "400us" into the f64 nearest 0.0004;
    // multiplying by 1e-6, itself inexact, would not.
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(malformed()),
    };
    if number.starts_with('-') {
        return Err(UnitError::Negative(text.to_owned()));
    }
    if Duration::try_from_secs_f64(seconds).is_err() {
        return Err(UnitError::TooLarge(text.to_owned()));
    }
    Ok(seconds)
}

/// Reads a size such as `"512B"`, `"8KiB"`, `"1.5MiB"`, `"2GiB"`, `"1TiB"` or a plain
/// byte count (`"4096"`) into bytes, rounded to the nearest byte.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let malformed = || UnitError::Size(text.to_owned());
    let too_large = || UnitError::TooLarge(text.to_owned());
    let (number, unit) = split(text).ok_or_else(malformed)?;
    let bytes_per_unit: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return Err(malformed()),
    };
    if number.starts_with('-') {
        return Err(UnitError::Negative(text.to_owned()));
    }
    if !number.contains('.') {
        // Whole numbers exactly, without a detour through f64.
        let count: u64 = number.parse().map_err(|_| too_large())?;
        return count.checked_mul(bytes_per_unit).ok_or_else(too_large);
    }
    let value: f64 = number.parse().map_err(|_| malformed())?;
    let bytes = (value * bytes_per_unit as f64).round();
    // 2^64 is exactly representable; every f64 below it fits in a u64.
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(too_large());
    }
    Ok(bytes as u64)
}

/// Writes `bytes` in the largest binary unit it reaches, with one decimal
/// (`"3.5 MiB"`); plain bytes below 1 KiB (`"512 B"`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    match UNITS.iter().find(|(_, size)| bytes >= *size) {
        Some((name, size)) => format!("{:.1} {name}", bytes as f64 / *size as f64),
        None => format!("{bytes} B"),
    }
}

/// Splits `text` into its number (`-`? digits (`.` digits)?) and the unit after it;
/// `None` if it does not start with such a number.
fn split(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let unsigned = number.strip_prefix('-').unwrap_or(number);
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    };
    well_formed.then_some((number, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250us"), Ok(250e-6));
        assert_eq!(parse_duration("4ms"), Ok(0.004));
        assert_eq!(parse_duration("400us"), Ok(0.0004));
        assert_eq!(parse_duration("25ms"), Ok(0.025));
        assert_eq!(parse_duration("1.5s"), Ok(1.5));
        assert_eq!(parse_duration("0s"), Ok(0.0));
        assert_eq!(parse_duration("10m"), Ok(600.0));
        assert_eq!(parse_duration("1h"), Ok(3600.0));
        assert_eq!(parse_duration("0.5h"), Ok(1800.0));
    }

    #[test]
    fn a_duration_needs_a_known_unit() {
        for bad in [
            "30", "", "s", "4 ms", "4sec", "4ns", "1e3s", ".5s", "5.s", "1.2.3s", "4MS", "--1s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err, UnitError::Duration(bad.to_owned()), "{bad:?}");
        }
        let message = parse_duration("30").unwrap_err().to_string();
        assert!(message.contains("got \"30\""), "{message}");
        assert!(message.contains("us, ms, s, m, h"), "{message}");
    }

    #[test]
    fn durations_longer_than_a_std_duration_are_refused() {
        // Found by the fuzzer: `brigade demo --duration 99999999999999999999999h`, or a
        // scenario's `tick` of it, panicked converting it into a Duration.
        for huge in [
            "99999999999999999999999h",
            "18446744073709551616s",
            "18446744073709551615s",
            "307445734561825861m",
        ] {
            assert_eq!(
                parse_duration(huge),
                Err(UnitError::TooLarge(huge.to_owned())),
                "{huge:?}"
            );
        }
        // The longest f64 number of seconds below 2^64.
        let longest = parse_duration("18446744073709549568s").unwrap();
        assert_eq!(
            Duration::from_secs_f64(longest).as_secs(),
            18_446_744_073_709_549_568
        );
    }

    #[test]
    fn negative_durations_are_refused() {
        assert_eq!(
            parse_duration("-1s"),
            Err(UnitError::Negative("-1s".to_owned()))
        );
    }

    #[test]
    fn sizes_in_every_unit_and_plain_byte_counts() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("8KiB"), Ok(8 << 10));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1.3KiB"), Ok(1331));
    }

    #[test]
    fn a_size_needs_a_binary_unit() {
        for bad in ["8KB", "1MB", "2GB", "8kib", "8 KiB", "KiB", "", "1e3", "x"] {
            assert_eq!(
                parse_size(bad),
                Err(UnitError::Size(bad.to_owned())),
                "{bad:?}"
            );
        }
        let message = parse_size("8KB").unwrap_err().to_string();
        assert!(message.contains("got \"8KB\""), "{message}");
        assert!(message.contains("B, KiB, MiB, GiB, TiB"), "{message}");
    }

    #[test]
    fn negative_and_huge_sizes_are_refused() {
        assert_eq!(
            parse_size("-1KiB"),
            Err(UnitError::Negative("-1KiB".to_owned()))
        );
        assert_eq!(
            parse_size("16777216TiB"),
            Err(UnitError::TooLarge("16777216TiB".to_owned()))
        );
        assert_eq!(
            parse_size("16777216.0TiB"),
            Err(UnitError::TooLarge("16777216.0TiB".to_owned()))
        );
        assert_eq!(parse_size("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn what_the_daemons_budget_endpoint_refuses() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        for bad in [
            "",
            "MiB",
            "8KB",
            "8kib",
            "8 KiB",
            "-1",
            "1e3",
            ".5MiB",
            "5.MiB",
            "1.2.3",
            "x",
            "99999999999TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_in_the_largest_unit_reached() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(3 << 19), "1.5 MiB");
        assert_eq!(format_bytes(5 << 30), "5.0 GiB");
        assert_eq!(format_bytes(3 << 40), "3.0 TiB");
    }
}
