//! A statement parameter sent as text, for the server to cast to its column's type,
//! as COPY's text is: the `insert` method's values.

use std::error::Error;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

/// A value's text, bound in the text format to a parameter of any type.
#[derive(Debug)]
pub(super) struct Text<'a>(pub &'a str);

impl ToSql for Text<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}
