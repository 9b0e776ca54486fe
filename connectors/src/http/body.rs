//! A batch as a request body: JSON lines, or `_bulk` action and document pairs.

use serde_json::{json, Value};

use super::{BulkAction, HttpSinkConfig};
use crate::record::json_kind;
use crate::Record;

/// What went into a body: for each item sent, the index of its record in the batch;
/// and the records that could not be items, with why.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Items {
    /// Batch indices of the items, in the body's order.
    pub sent: Vec<usize>,
    /// (batch index, why) of the records left out.
    pub refused: Vec<(usize, String)>,
}

/// Appends the records of `batch` to `out`, one JSON line each.
pub(crate) fn json_lines(batch: &[Record], out: &mut Vec<u8>) -> Items {
    for record in batch {
        out.extend_from_slice(record.value.to_string().as_bytes());
        out.push(b'\n');
    }
    Items {
        sent: (0..batch.len()).collect(),
        refused: Vec::new(),
    }
}

/// Appends the records of `batch` to `out` as `_bulk` pairs: the action
/// line (`_index`, and `_id` from `id_field`), then the document. A record that is not
/// an object, or lacks a usable `id_field`, is refused.
pub(crate) fn bulk(
    batch: &[Record],
    config: &HttpSinkConfig,
    index: &str,
    out: &mut Vec<u8>,
) -> Items {
    let mut items = Items::default();
    let action = config.action.name();
    for (at, record) in batch.iter().enumerate() {
        let value = &record.value;
        let Value::Object(document) = value else {
            items.refused.push((
                at,
                format!(
                    "a bulk document must be a JSON object, got {}",
                    json_kind(value)
                ),
            ));
            continue;
        };
        let mut meta = json!({ "_index": index });
        if let Some(field) = &config.id_field {
            match document.get(field) {
                Some(Value::String(id)) if !id.is_empty() => meta["_id"] = json!(id),
                Some(Value::Number(id)) => meta["_id"] = json!(id.to_string()),
                Some(other) => {
                    items.refused.push((
                        at,
                        format!(
                            "field `{field}` (id_field) is {}; expected a string that is not \
                             empty or a number for the document's `_id`",
                            json_kind(other)
                        ),
                    ));
                    continue;
                }
                None => {
                    items.refused.push((
                        at,
                        format!("the record has no field `{field}` (id_field) for its `_id`"),
                    ));
                    continue;
                }
            }
        }
        out.extend_from_slice(json!({ action: meta }).to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(value.to_string().as_bytes());
        out.push(b'\n');
        items.sent.push(at);
    }
    items
}

/// The `_bulk` action of `config`, for reading the answer's items.
pub(crate) fn is_create(config: &HttpSinkConfig) -> bool {
    config.action == BulkAction::Create
}
