//! Reading Redis replies: strings, numbers, arrays, stream entries, field maps.

use redis::Value;

/// One stream entry as a reply holds it: its id, and its fields unless the entry was
/// deleted (trimmed) after it was delivered.
pub(crate) type Entry = (String, Option<Vec<(String, Vec<u8>)>>);

/// The text of a string, status or number reply.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Okay => Some("OK".to_owned()),
        Value::Int(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A number reply, or a string holding one.
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(number) => Some(*number),
        other => text(other)?.parse().ok(),
    }
}

/// The items of an array reply (nil reads as empty).
pub(crate) fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// A reply of name–value pairs (a flat array, or a map) as pairs.
pub(crate) fn pairs(value: &Value) -> Vec<(String, &Value)> {
    match value {
        Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(key, value)| Some((text(key)?, value)))
            .collect(),
        other => items(other)
            .chunks(2)
            .filter_map(|pair| match pair {
                [key, value] => Some((text(key)?, value)),
                _ => None,
            })
            .collect(),
    }
}

/// The value of `name` in a reply of name–value pairs.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    pairs(value)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Entries as `XRANGE`, `XCLAIM` and `XAUTOCLAIM` reply them: `[[id, [f, v, …]], …]`.
pub(crate) fn entries(value: &Value) -> Vec<Entry> {
    items(value)
        .iter()
        .filter_map(|entry| {
            let [id, fields] = items(entry) else {
                return None;
            };
            let fields = match fields {
                Value::Nil => None,
                fields => Some(
                    items(fields)
                        .chunks(2)
                        .filter_map(|pair| match pair {
                            [name, Value::BulkString(bytes)] => Some((text(name)?, bytes.clone())),
                            [name, other] => Some((text(name)?, text(other)?.into_bytes())),
                            _ => None,
                        })
                        .collect(),
                ),
            };
            Some((text(id)?, fields))
        })
        .collect()
}

/// `XREADGROUP`'s reply: entries by stream name (nil when nothing came).
pub(crate) fn streams(value: &Value) -> Vec<(String, Vec<Entry>)> {
    match value {
        Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(name, entries_of)| Some((text(name)?, entries(entries_of))))
            .collect(),
        other => items(other)
            .iter()
            .filter_map(|stream| match items(stream) {
                [name, entries_of] => Some((text(name)?, entries(entries_of))),
                _ => None,
            })
            .collect(),
    }
}
