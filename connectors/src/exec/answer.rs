//! The answer protocol: one JSON object per input line, with exactly one of `out`,
//! `outs`, `error` or `retry`.

use serde_json::Value;

/// What a process answered for one record.
#[derive(Debug, PartialEq)]
pub(super) enum Answer {
    /// `{"out": v}` (one value, whatever it is) or `{"outs": [v, …]}` (zero or many).
    Outputs(Vec<Value>),
    /// `{"error": "why"}`: the record fails for good.
    Error(String),
    /// `{"retry": "why"}`: the record may succeed later.
    Retry(String),
}

/// Reads one answer line (without its newline). Err says why it is not an answer.
pub(super) fn parse(line: &[u8]) -> Result<Answer, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let value: Value =
        serde_json::from_slice(line).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(fields) = value else {
        return Err("not a JSON object".into());
    };
    if fields.len() != 1 {
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        return Err(format!(
            "an answer has exactly one of `out`, `outs`, `error`, `retry`; this one has [{}]",
            keys.join(", ")
        ));
    }
    let Some((key, value)) = fields.into_iter().next() else {
        return Err("an empty object".into());
    };
    match (key.as_str(), value) {
        ("out", value) => Ok(Answer::Outputs(vec![value])),
        ("outs", Value::Array(values)) => Ok(Answer::Outputs(values)),
        ("error", Value::String(why)) => Ok(Answer::Error(why)),
        ("retry", Value::String(why)) => Ok(Answer::Retry(why)),
        ("outs", _) => Err("`outs` is not an array".into()),
        ("error" | "retry", _) => Err(format!("`{key}` is not a string")),
        (other, _) => Err(format!("unknown key `{other}`")),
    }
}

/// The start of a line, for an error message.
pub(super) fn excerpt(line: &[u8]) -> String {
    const LONGEST: usize = 200;
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_answer_kind_is_read() {
        assert_eq!(
            parse(br#"{"out": [1, 2]}"#),
            Ok(Answer::Outputs(vec![json!([1, 2])]))
        );
        assert_eq!(
            parse(br#"{"out": null}"#),
            Ok(Answer::Outputs(vec![Value::Null]))
        );
        assert_eq!(parse(br#"{"outs": []}"#), Ok(Answer::Outputs(vec![])));
        assert_eq!(
            parse(b"{\"outs\": [1, \"a\"]}\r"),
            Ok(Answer::Outputs(vec![json!(1), json!("a")]))
        );
        assert_eq!(
            parse(br#"{"error": "bad"}"#),
            Ok(Answer::Error("bad".into()))
        );
        assert_eq!(
            parse(br#"{"retry": "later"}"#),
            Ok(Answer::Retry("later".into()))
        );
    }

    #[test]
    fn anything_else_says_why_it_is_no_answer() {
        for (line, why) in [
            (&b"hello"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (b"{}", "this one has []"),
            (br#"{"out": 1, "error": "x"}"#, "this one has [error, out]"),
            (br#"{"outs": 1}"#, "`outs` is not an array"),
            (br#"{"error": 1}"#, "`error` is not a string"),
            (br#"{"value": 1}"#, "unknown key `value`"),
        ] {
            let error = parse(line).unwrap_err();
            assert!(error.contains(why), "{}: {error}", excerpt(line));
        }
    }

    #[test]
    fn an_excerpt_is_cut_on_a_character() {
        assert_eq!(
            excerpt("é".repeat(300).as_bytes()),
            format!("{}…", "é".repeat(200))
        );
    }
}
