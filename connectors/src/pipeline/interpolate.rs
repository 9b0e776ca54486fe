//! `${NAME}` in string values: replaced by the environment variable `NAME`, after the
//! TOML is parsed (so a value can never break the file's syntax). `$${` writes a
//! literal `${`; any other `$` is itself.

/// What the environment holds for a name.
pub(crate) enum Lookup {
    /// Set, to this.
    Set(String),
    /// Not set.
    Unset,
    /// Set, but not valid UTF-8.
    NotUnicode,
}

/// Reads `name` from the process's environment.
pub(crate) fn from_process(name: &str) -> Lookup {
    match std::env::var(name) {
        Ok(value) => Lookup::Set(value),
        Err(std::env::VarError::NotPresent) => Lookup::Unset,
        Err(std::env::VarError::NotUnicode(_)) => Lookup::NotUnicode,
    }
}

/// `text` with every `${NAME}` replaced; `None` if it has none (nothing to replace).
/// The error says which variable and why.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Lookup,
) -> Result<Option<String>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(open) = after.strip_prefix("${") {
            let end = open.find('}').ok_or_else(|| {
                "an unterminated `${`: write `${NAME}`, or `$${` for a literal `${`".to_owned()
            })?;
            let name = &open[..end];
            if !is_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not a variable name: letters, digits and `_`, not \
                     starting with a digit (write `$${{` for a literal `${{`)"
                ));
            }
            match lookup(name) {
                Lookup::Set(value) => out.push_str(&value),
                Lookup::Unset => {
                    return Err(format!("the environment variable `{name}` is not set"))
                }
                Lookup::NotUnicode => {
                    return Err(format!(
                        "the environment variable `{name}` is not valid UTF-8"
                    ))
                }
            }
            rest = &open[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Lookup {
        match name {
            "USER" => Lookup::Set("ada".to_owned()),
            "EMPTY" => Lookup::Set(String::new()),
            "BYTES" => Lookup::NotUnicode,
            _ => Lookup::Unset,
        }
    }

    fn run(text: &str) -> Result<Option<String>, String> {
        interpolate(text, &env)
    }

    #[test]
    fn replaces_set_variables() {
        assert_eq!(
            run("a${USER}b${EMPTY}c${USER}").unwrap().unwrap(),
            "aadabcada"
        );
    }

    #[test]
    fn text_without_a_reference_is_left_alone() {
        assert_eq!(run("costs $5 {x}").unwrap(), None);
    }

    #[test]
    fn a_doubled_dollar_is_a_literal_reference() {
        assert_eq!(
            run("$${USER} ${USER} $$ $").unwrap().unwrap(),
            "${USER} ada $$ $"
        );
    }

    #[test]
    fn unset_and_non_unicode_variables_are_named() {
        let err = run("x${NOPE}").unwrap_err();
        assert!(err.contains("`NOPE` is not set"), "{err}");
        let err = run("${BYTES}").unwrap_err();
        assert!(err.contains("`BYTES` is not valid UTF-8"), "{err}");
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(run("${USER").unwrap_err().contains("unterminated"));
        assert!(run("${1X}").unwrap_err().contains("not a variable name"));
        assert!(run("${}").unwrap_err().contains("not a variable name"));
    }
}
