//! The keys a connector's configuration takes, read from its `Deserialize`
//! implementation, so that an unknown key can be named with the ones expected.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The field names `T` deserializes as a struct, or `None` if it is not read as one
/// (then serde's own message names the unknown key).
pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => None,
    }
}

/// A deserializer that only notes the fields it is asked for.
struct Probe;

/// Stops deserialization, holding the fields asked for, if any.
#[derive(Debug)]
struct Found(Option<&'static [&'static str]>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Found(None)
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out::StdoutSinkConfig;
    use crate::sqlite::SqliteSinkConfig;

    #[test]
    fn reads_a_structs_fields_in_order() {
        let fields = fields_of::<SqliteSinkConfig>().unwrap();
        assert_eq!(&fields[..3], ["path", "table", "columns"]);
        assert!(fields.contains(&"busy_timeout"));
        assert_eq!(fields_of::<StdoutSinkConfig>(), Some(&[][..]));
        assert_eq!(fields_of::<String>(), None);
    }
}
