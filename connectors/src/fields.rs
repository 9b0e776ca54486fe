//! The `fields` stage: renames, drops and sets top-level fields of object records, in
//! process, without an external program.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::record::json_kind;

/// `[[stage]] type = "fields"`. Applied in this order: `rename`, then `drop`, then
/// `set`, so a field can be renamed and a new one set under its old name.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    /// Fields set (added or replaced) to these values, e.g. `{ source = "shop" }`.
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// Fields renamed, old name to new; a missing field is left missing, an existing
    /// field under the new name is replaced.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Fields removed; a missing one is ignored.
    #[serde(default)]
    pub drop: Vec<String>,
}

impl FieldsConfig {
    /// Applies the changes to `value`; a value that is not a JSON object is that
    /// record's error (nothing is changed).
    pub fn apply(&self, value: &mut Value) -> Result<(), String> {
        let Value::Object(object) = value else {
            return Err(format!(
                "the fields stage needs a JSON object, got {}",
                json_kind(value)
            ));
        };
        for (from, to) in &self.rename {
            if let Some(moved) = object.remove(from) {
                object.insert(to.clone(), moved);
            }
        }
        for name in &self.drop {
            object.remove(name);
        }
        for (name, set) in &self.set {
            object.insert(name.clone(), set.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(text: &str) -> FieldsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn renames_drops_and_sets_in_that_order() {
        let fields = config(
            r#"
            rename = { id = "order_id", total = "amount" }
            drop = ["secret", "absent"]
            set = { id = "new", source = "shop", tags = ["a", 1] }
            "#,
        );
        let mut value = json!({"id": 7, "total": 9.5, "secret": "x", "keep": true});
        fields.apply(&mut value).unwrap();
        assert_eq!(
            value,
            json!({
                "order_id": 7,
                "amount": 9.5,
                "keep": true,
                "id": "new",
                "source": "shop",
                "tags": ["a", 1],
            })
        );
    }

    #[test]
    fn a_missing_field_is_neither_renamed_nor_created() {
        let fields = config(r#"rename = { a = "b" }"#);
        let mut value = json!({"c": 1});
        fields.apply(&mut value).unwrap();
        assert_eq!(value, json!({"c": 1}));
    }

    #[test]
    fn a_rename_replaces_the_field_under_the_new_name() {
        let fields = config(r#"rename = { a = "b" }"#);
        let mut value = json!({"a": 1, "b": 2});
        fields.apply(&mut value).unwrap();
        assert_eq!(value, json!({"b": 1}));
    }

    #[test]
    fn a_record_that_is_not_an_object_is_an_error_and_left_as_is() {
        let fields = config(r#"set = { a = 1 }"#);
        for (mut value, kind) in [
            (json!("line"), "a string"),
            (json!([1]), "an array"),
            (json!(null), "null"),
        ] {
            let before = value.clone();
            let err = fields.apply(&mut value).unwrap_err();
            assert!(err.contains(kind), "{err}");
            assert_eq!(value, before);
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = toml::from_str::<FieldsConfig>("remove = [\"a\"]").unwrap_err();
        assert!(err.message().contains("unknown field `remove`"), "{err}");
    }
}
