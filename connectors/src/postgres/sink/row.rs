//! A record as the row it becomes: one text cell per column (or `NULL`), and its key.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use crate::record::json_kind;

/// One record of a batch, as cells the server casts to its columns' types.
#[derive(Debug)]
pub(super) struct Row<'a> {
    /// The record's index in its batch.
    pub index: usize,
    /// One per configured column, in order: the value's text, `None` for `NULL`.
    pub cells: Vec<Option<Cow<'a, str>>>,
    /// The key cells, each length-prefixed so that no two keys share an encoding;
    /// empty without a key.
    key: String,
}

impl<'a> Row<'a> {
    /// The row of `record`: Err says why it cannot be one (not an object, a key field
    /// missing or null). `key` holds the key columns' positions in `columns`.
    pub fn of(
        index: usize,
        record: &'a Value,
        columns: &[String],
        key: &[usize],
    ) -> Result<Row<'a>, String> {
        let Value::Object(fields) = record else {
            return Err(format!(
                "the record is not a JSON object but {}",
                json_kind(record)
            ));
        };
        let cells: Vec<Option<Cow<'a, str>>> = columns
            .iter()
            .map(|column| fields.get(column).and_then(cell))
            .collect();
        let mut encoded = String::new();
        for &position in key {
            let Some(text) = &cells[position] else {
                return Err(format!(
                    "the record has no value for the key field `{}`",
                    columns[position]
                ));
            };
            encoded += &format!("{}:{text}", text.len());
        }
        Ok(Row {
            index,
            cells,
            key: encoded,
        })
    }
}

/// A JSON value as the text PostgreSQL casts: strings as they are, numbers and
/// booleans as their JSON text, objects and arrays as JSON text; null is `None`.
fn cell(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Some(Cow::Owned(value.to_string()))
        }
    }
}

/// `rows` with each key kept once, in its last row (at the place of its first), so
/// that one statement never updates a row twice; all of them without a key.
pub(super) fn last_of_each_key<'r, 'a>(rows: &'r [Row<'a>], keyed: bool) -> Vec<&'r Row<'a>> {
    if !keyed {
        return rows.iter().collect();
    }
    let mut kept: Vec<&Row> = Vec::with_capacity(rows.len());
    let mut slot: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for row in rows {
        match slot.get(row.key.as_str()) {
            Some(&at) => kept[at] = row,
            None => {
                slot.insert(&row.key, kept.len());
                kept.push(row);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn each_json_kind_becomes_its_text() {
        let record =
            json!({"i": 7, "f": 1.5, "s": "é\t", "t": true, "n": null, "a": [1, {"b": 2}]});
        let row = Row::of(
            0,
            &record,
            &columns(&["i", "f", "s", "t", "n", "a", "gone"]),
            &[],
        )
        .unwrap();
        let cells: Vec<Option<&str>> = row.cells.iter().map(|c| c.as_deref()).collect();
        assert_eq!(
            cells,
            [
                Some("7"),
                Some("1.5"),
                Some("é\t"),
                Some("true"),
                None,
                Some(r#"[1,{"b":2}]"#),
                None
            ]
        );
    }

    #[test]
    fn a_record_without_its_key_or_not_an_object_is_no_row() {
        let names = columns(&["id", "name"]);
        let error = Row::of(0, &json!({"name": "x"}), &names, &[0]).unwrap_err();
        assert!(error.contains("key field `id`"), "{error}");
        let error = Row::of(0, &json!({"id": null}), &names, &[0]).unwrap_err();
        assert!(error.contains("key field `id`"), "{error}");
        let error = Row::of(0, &json!([1]), &names, &[0]).unwrap_err();
        assert!(error.contains("not a JSON object but an array"), "{error}");
    }

    #[test]
    fn the_last_row_of_each_key_is_kept_where_the_key_first_came() {
        let names = columns(&["a", "b", "v"]);
        let values = [
            json!({"a": "x", "b": "1", "v": 1}),
            json!({"a": "y", "b": "1", "v": 2}),
            json!({"a": "x", "b": "1", "v": 3}),
            // Not the same key as ("x", "1") though the texts joined are alike.
            json!({"a": "x1", "b": "", "v": 4}),
        ];
        let rows: Vec<Row> = values
            .iter()
            .enumerate()
            .map(|(index, value)| Row::of(index, value, &names, &[0, 1]).unwrap())
            .collect();
        let kept: Vec<usize> = last_of_each_key(&rows, true)
            .iter()
            .map(|row| row.index)
            .collect();
        assert_eq!(kept, [2, 1, 3]);
        assert_eq!(last_of_each_key(&rows, false).len(), 4);
    }
}
