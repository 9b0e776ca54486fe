//! Numbers as an operator reads them: short, with their unit, the same everywhere.

/// Bytes in binary units: `512 B`, `1.5 KiB`, `48.0 MiB`, `512 MiB`.
pub(crate) fn bytes(value: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if value < 1024 {
        return format!("{value} B");
    }
    let mut scaled = value as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if scaled < 100.0 {
        format!("{scaled:.1} {}", UNITS[unit])
    } else {
        format!("{scaled:.0} {}", UNITS[unit])
    }
}

/// `part` of `whole`, the unit said once when both share it: `180/256 MiB`,
/// `900 KiB/1.5 MiB`.
pub(crate) fn bytes_of(part: u64, whole: u64) -> String {
    let (part, whole) = (bytes(part), bytes(whole));
    match (part.split_once(' '), whole.split_once(' ')) {
        (Some((p, unit)), Some((w, whole_unit))) if unit == whole_unit => {
            format!("{p}/{w} {unit}")
        }
        _ => format!("{part}/{whole}"),
    }
}

/// A count, shortened past four digits: `1234`, `12.3k`, `1.23M`.
pub(crate) fn count(value: u64) -> String {
    if value < 10_000 {
        value.to_string()
    } else {
        si(value as f64)
    }
}

/// A rate per second: `0/s`, `3.4/s`, `340/s`, `1.23k/s`.
pub(crate) fn rate(per_second: f64) -> String {
    let value = per_second.max(0.0);
    if value == 0.0 {
        "0/s".into()
    } else if value < 0.1 {
        // A breaker's probes, say: one a minute.
        format!("1 per {}", seconds(1.0 / value))
    } else if value < 10.0 {
        format!("{value:.1}/s")
    } else if value < 999.5 {
        format!("{value:.0}/s")
    } else {
        format!("{}/s", si(value))
    }
}

fn si(value: f64) -> String {
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    let mut scaled = value;
    let mut unit = 0;
    while scaled >= 999.5 && unit + 1 < UNITS.len() {
        scaled /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{scaled:.0}")
    } else if scaled < 9.995 {
        format!("{scaled:.2}{}", UNITS[unit])
    } else if scaled < 99.95 {
        format!("{scaled:.1}{}", UNITS[unit])
    } else {
        format!("{scaled:.0}{}", UNITS[unit])
    }
}

/// A duration given in microseconds: `850µs`, `1.2ms`, `85ms`, `1.20s`, `2m03s`.
pub(crate) fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else if us < 1_000_000 {
        format!("{}ms", us / 1000)
    } else {
        seconds(us as f64 / 1e6)
    }
}

/// A duration in seconds: `0.3s`, `1.20s`, `42s`, `2m03s`, `1h02m`.
pub(crate) fn seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        let precision = if s < 1.0 { 1 } else { 2 };
        format!("{s:.precision$}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        let whole = s.round() as u64;
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// Time since the start: `42s`, `7m00s`, `1h02m03s`.
pub(crate) fn elapsed(s: f64) -> String {
    let whole = s.max(0.0).floor() as u64;
    match (whole / 3600, whole % 3600 / 60, whole % 60) {
        (0, 0, secs) => format!("{secs}s"),
        (0, mins, secs) => format!("{mins}m{secs:02}s"),
        (hours, mins, secs) => format!("{hours}h{mins:02}m{secs:02}s"),
    }
}

/// A chart's axis figure: `0`, `8`, `2.5k`, `3k`, `1.2M`.
pub(crate) fn axis(value: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    let (scaled, unit) = UNITS
        .iter()
        .find(|&&(size, _)| value >= size)
        .map_or((value, ""), |&(size, unit)| (value / size, unit));
    let text = format!("{scaled:.1}");
    format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A share, 0..=1, as a whole percentage: `92%`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.0}%", (share * 100.0).clamp(0.0, 999.0))
}

/// A replay speed: `0.25`, `0.5`, `1`, `64`.
pub(crate) fn speed(speed: f64) -> String {
    if speed.fract() == 0.0 {
        format!("{speed:.0}")
    } else {
        let text = format!("{speed:.2}");
        text.trim_end_matches('0').to_string()
    }
}

/// `text` cut to `width` characters, ending in `…` when cut.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// `text` broken into at most `lines` lines of `width` characters, at spaces where it
/// can; the last line ends in `…` when the text does not fit.
pub(crate) fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    if width == 0 || lines == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let (used, len) = (current.chars().count(), word.chars().count());
        if used > 0 && used + 1 + len <= width {
            current.push(' ');
            current.push_str(word);
            continue;
        }
        if used > 0 {
            out.push(std::mem::take(&mut current));
        }
        let mut rest: Vec<char> = word.chars().collect();
        while rest.len() > width {
            out.push(rest.drain(..width).collect());
        }
        current = rest.into_iter().collect();
    }
    if !current.is_empty() {
        out.push(current);
    }
    if out.len() > lines {
        let rest = out[lines - 1..].join(" ");
        out.truncate(lines - 1);
        out.push(truncate(&rest, width));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(48 << 20), "48.0 MiB");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes_of(180 << 20, 256 << 20), "180/256 MiB");
        assert_eq!(bytes_of(900 << 10, 3 << 19), "900 KiB/1.5 MiB");
    }

    #[test]
    fn counts_and_rates() {
        assert_eq!(count(1234), "1234");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(count(1_234_567), "1.23M");
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(1.0 / 60.0), "1 per 1m00s");
        assert_eq!(rate(0.05), "1 per 20s");
        assert_eq!(rate(3.44), "3.4/s");
        assert_eq!(rate(340.2), "340/s");
        assert_eq!(rate(1234.0), "1.23k/s");
        assert_eq!(rate(999.7), "1.00k/s");
    }

    #[test]
    fn durations() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1234), "1.2ms");
        assert_eq!(micros(85_000), "85ms");
        assert_eq!(micros(1_200_000), "1.20s");
        assert_eq!(seconds(0.31), "0.3s");
        assert_eq!(seconds(123.0), "2m03s");
        assert_eq!(seconds(3720.0), "1h02m");
        assert_eq!(elapsed(42.9), "42s");
        assert_eq!(elapsed(420.0), "7m00s");
        assert_eq!(elapsed(3723.0), "1h02m03s");
    }

    #[test]
    fn shares_speeds_and_truncation() {
        assert_eq!(percent(0.921), "92%");
        assert_eq!(axis(0.0), "0");
        assert_eq!(axis(9.0), "9");
        assert_eq!(axis(2500.0), "2.5k");
        assert_eq!(axis(3000.0), "3k");
        assert_eq!(speed(0.25), "0.25");
        assert_eq!(speed(0.5), "0.5");
        assert_eq!(speed(64.0), "64");
        assert_eq!(truncate("geocode", 10), "geocode");
        assert_eq!(truncate("geocode_addresses", 8), "geocode…");
        assert_eq!(wrap("a bb ccc dddd", 6, 2), ["a bb", "ccc d…"]);
        assert_eq!(wrap("a bb ccc", 6, 3), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3, 5), ["abc", "def", "gh"]);
        assert!(wrap("text", 0, 2).is_empty());
    }
}
