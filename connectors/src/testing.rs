//! What the connectors' tests share.

use std::sync::Arc;

use serde_json::Value;

use crate::{Origin, Record};

/// Records of `values`, read from lines 1, 2, … of `in.jsonl`.
pub(crate) fn records(values: &[Value]) -> Vec<Record> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            value: value.clone(),
            origin: Origin::Line {
                source: Arc::from("in.jsonl"),
                line: index as u64 + 1,
            },
        })
        .collect()
}
