//! Sizes as people type and read them: `"512MiB"` in, `"512.0 MiB"` out.

const UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// Reads a size such as `"512B"`, `"8KiB"`, `"1.5MiB"`, `"2GiB"`, `"1TiB"` or a plain
/// byte count (`"4096"`) into bytes, rounded to the nearest byte: the units of scenario
/// files. `None` when `text` is not such a size or does not fit in a `u64`.
pub fn parse_size(text: &str) -> Option<u64> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let per_unit = match unit {
        "" => 1,
        _ => UNITS.iter().find(|(name, _)| *name == unit)?.1,
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match number.split_once('.') {
        None if digits(number) => number.parse::<u64>().ok()?.checked_mul(per_unit),
        Some((whole, fraction)) if digits(whole) && digits(fraction) => {
            let bytes = (number.parse::<f64>().ok()? * per_unit as f64).round();
            // 2^64 is exactly representable; every f64 below it fits in a u64.
            (bytes < 18_446_744_073_709_551_616.0).then_some(bytes as u64)
        }
        _ => None,
    }
}

/// Writes `bytes` in the largest binary unit it reaches, with one decimal
/// (`"3.5 MiB"`); plain bytes below 1 KiB (`"512 B"`).
pub fn format_bytes(bytes: u64) -> String {
    match UNITS.iter().find(|(_, size)| bytes >= *size && *size > 1) {
        Some((name, size)) => format!("{:.1} {name}", bytes as f64 / *size as f64),
        None => format!("{bytes} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit_and_plain_counts() {
        assert_eq!(parse_size("512B"), Some(512));
        assert_eq!(parse_size("8KiB"), Some(8 << 10));
        assert_eq!(parse_size("1.5MiB"), Some(3 << 19));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1TiB"), Some(1 << 40));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0"), Some(0));
    }

    #[test]
    fn anything_else_is_refused() {
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
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_in_the_largest_unit_reached() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(3 << 19), "1.5 MiB");
        assert_eq!(format_bytes(5 << 30), "5.0 GiB");
    }
}
