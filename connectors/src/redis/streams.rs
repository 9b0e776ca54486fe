//! The streams a source reads: `stream`, or `streams` with ranges (`s:{0..3}`).

/// The most streams one source may read (a range written by mistake as `{0..100000}`
/// is an error, not a hundred thousand reads).
const MOST_STREAMS: usize = 1024;

/// The stream names of `stream` or `streams` (exactly one given), ranges expanded in
/// order, each name once. The message names the key at fault.
pub fn expand_streams(stream: Option<&str>, streams: &[String]) -> Result<Vec<String>, String> {
    let written: Vec<&str> = match (stream, streams.is_empty()) {
        (Some(_), false) => {
            return Err("`stream` and `streams` are both given; expected one of them".into())
        }
        (None, true) => return Err("missing key `stream` (or `streams`)".into()),
        (Some(one), true) => vec![one],
        (None, false) => streams.iter().map(String::as_str).collect(),
    };
    let key = if stream.is_some() {
        "stream"
    } else {
        "streams"
    };
    let mut names = Vec::new();
    for pattern in written {
        for name in expand(pattern).map_err(|why| format!("`{key}` `{pattern}`: {why}"))? {
            if name.is_empty() {
                return Err(format!("`{key}` holds an empty stream name"));
            }
            if names.contains(&name) {
                return Err(format!("`{key}`: stream `{name}` is named twice"));
            }
            names.push(name);
            if names.len() > MOST_STREAMS {
                return Err(format!("`{key}` names more than {MOST_STREAMS} streams"));
            }
        }
    }
    Ok(names)
}

/// One name with at most one `{a..b}` range (both ends included).
fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return if pattern.contains('}') {
            Err("a `}` without its `{`".into())
        } else {
            Ok(vec![pattern.to_owned()])
        };
    };
    let close = pattern[open..]
        .find('}')
        .map(|at| open + at)
        .ok_or("a `{` without its `}`")?;
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    if suffix.contains('{') || suffix.contains('}') {
        return Err("expected at most one `{a..b}` range".into());
    }
    let range = &pattern[open + 1..close];
    let (from, to) = range
        .split_once("..")
        .ok_or_else(|| format!("`{{{range}}}` is not a range; expected `{{0..3}}`"))?;
    let number = |text: &str| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not a whole number in `{{{range}}}`"))
    };
    let (from, to) = (number(from)?, number(to)?);
    if from > to {
        return Err(format!("`{{{range}}}` is empty; expected a..b with a ≤ b"));
    }
    if to - from >= MOST_STREAMS as u64 {
        return Err(format!(
            "`{{{range}}}` names more than {MOST_STREAMS} streams"
        ));
    }
    Ok((from..=to)
        .map(|n| format!("{prefix}{n}{suffix}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(written: &[&str]) -> Result<Vec<String>, String> {
        let written: Vec<String> = written.iter().map(|s| s.to_string()).collect();
        expand_streams(None, &written)
    }

    #[test]
    fn ranges_expand_inclusively_in_order() {
        assert_eq!(
            streams(&["s:{0..3}"]).unwrap(),
            ["s:0", "s:1", "s:2", "s:3"]
        );
        assert_eq!(streams(&["a", "p{1..2}x"]).unwrap(), ["a", "p1x", "p2x"]);
        assert_eq!(expand_streams(Some("one"), &[]).unwrap(), ["one"]);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fault() {
        assert_eq!(
            expand_streams(None, &[]).unwrap_err(),
            "missing key `stream` (or `streams`)"
        );
        assert_eq!(
            expand_streams(Some("a"), &["b".into()]).unwrap_err(),
            "`stream` and `streams` are both given; expected one of them"
        );
        assert_eq!(
            streams(&["s:{3..1}"]).unwrap_err(),
            "`streams` `s:{3..1}`: `{3..1}` is empty; expected a..b with a ≤ b"
        );
        assert_eq!(
            streams(&["s:{0..1}", "s:1"]).unwrap_err(),
            "`streams`: stream `s:1` is named twice"
        );
        assert!(streams(&["s:{0..x}"])
            .unwrap_err()
            .contains("`x` is not a whole number"));
        assert!(streams(&["s:{0..9999}"])
            .unwrap_err()
            .contains("more than 1024"));
    }
}
