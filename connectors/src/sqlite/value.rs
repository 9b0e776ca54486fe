//! A record's fields as SQLite values: the row a record becomes.

use rusqlite::types::Value as Sql;
use serde_json::Value;

use crate::record::json_kind;

/// The values of `columns` in `record`, in order: numbers as INTEGER (or REAL when not
/// a 64-bit integer), strings as TEXT, booleans as 0/1, null or missing as NULL,
/// objects and arrays as their JSON text. Err says why the record cannot be a row: it
/// is not an object, or a key column is missing or null.
pub(crate) fn row(record: &Value, columns: &[String], key: &[String]) -> Result<Vec<Sql>, String> {
    let Value::Object(fields) = record else {
        return Err(format!(
            "the record is not a JSON object but {}",
            json_kind(record)
        ));
    };
    if let Some(missing) = key
        .iter()
        .find(|column| fields.get(*column).is_none_or(Value::is_null))
    {
        return Err(format!(
            "the record has no value for the key field `{missing}`"
        ));
    }
    Ok(columns
        .iter()
        .map(|column| fields.get(column).map_or(Sql::Null, sql_value))
        .collect())
}

fn sql_value(value: &Value) -> Sql {
    match value {
        Value::Null => Sql::Null,
        Value::Bool(flag) => Sql::Integer(i64::from(*flag)),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Sql::Integer(integer),
            None => Sql::Real(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => Sql::Text(text.clone()),
        Value::Array(_) | Value::Object(_) => Sql::Text(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn each_json_kind_maps_to_its_sqlite_value() {
        let record = json!({"i": 7, "f": 1.5, "s": "é", "t": true, "n": null, "a": [1, {"b": 2}]});
        let values = row(
            &record,
            &columns(&["i", "f", "s", "t", "n", "a", "gone"]),
            &[],
        )
        .unwrap();
        assert_eq!(
            values,
            vec![
                Sql::Integer(7),
                Sql::Real(1.5),
                Sql::Text("é".into()),
                Sql::Integer(1),
                Sql::Null,
                Sql::Text(r#"[1,{"b":2}]"#.into()),
                Sql::Null,
            ]
        );
    }

    #[test]
    fn a_record_without_its_key_or_not_an_object_is_no_row() {
        let key = columns(&["id"]);
        let error = row(&json!({"name": "x"}), &columns(&["id", "name"]), &key).unwrap_err();
        assert!(error.contains("key field `id`"), "{error}");
        let error = row(&json!({"id": null}), &columns(&["id"]), &key).unwrap_err();
        assert!(error.contains("key field `id`"), "{error}");
        let error = row(&json!([1, 2]), &columns(&["id"]), &key).unwrap_err();
        assert!(error.contains("not a JSON object but an array"), "{error}");
    }
}
