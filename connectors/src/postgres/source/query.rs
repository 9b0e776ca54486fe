//! The statements the source runs, built from the configured query or table and the
//! key, and the conversion of a result row to a JSON object.

use postgres::types::{Kind, Type};
use postgres::{Client, Row};
use serde_json::{Map, Value};

use super::error::PgSourceError;
use super::value::{supported, to_json, unsupported, Cell};
use super::PgSourceConfig;

/// The alias the configured query gets inside the source's statements.
const ALIAS: &str = "brigade_q";

/// The configured query, described by the server: its columns and its key.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The SELECT as configured (or `SELECT * FROM table`), without a trailing `;`.
    base: String,
    /// The result's columns, in order.
    columns: Vec<(String, Type)>,
    /// The key column, if any.
    key: Option<Key>,
}

/// The key column of a plan.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    /// Its name as configured.
    pub name: String,
    /// Its place among the columns.
    index: usize,
    /// Its type, qualified and quoted, to cast a key written as text back to.
    cast: String,
    /// Whether it is `smallint`, `integer` or `bigint`: what partitions split.
    pub integer: bool,
}

/// `name` as a quoted SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table name as configured (`orders`, `sales.orders`), each part quoted.
fn table_name(table: &str) -> String {
    table.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// A key's value as text, to bind as `$1::text` and cast to the key's type.
pub(crate) fn key_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Plan {
    /// Asks the server to describe `config`'s query: the query must be valid, its
    /// columns of types the source converts and uniquely named, the key among them
    /// and orderable (an integer when `partitions` > 1).
    pub(crate) fn describe(
        client: &mut Client,
        config: &PgSourceConfig,
    ) -> Result<Plan, PgSourceError> {
        let base = match (&config.query, &config.table) {
            (Some(query), _) => query.trim().trim_end_matches(';').trim_end().to_owned(),
            (None, Some(table)) => format!("SELECT * FROM {}", table_name(table)),
            (None, None) => {
                return Err(PgSourceError::Shape(
                    "expected `query` or `table`".to_owned(),
                ))
            }
        };
        let what = match &config.table {
            Some(table) if config.query.is_none() => format!("table `{table}`"),
            _ => "the query".to_owned(),
        };
        let statement = client
            .prepare(&format!("SELECT * FROM ({base}) AS {ALIAS} LIMIT 0"))
            .map_err(|error| PgSourceError::query(&what, &error))?;
        let columns: Vec<(String, Type)> = statement
            .columns()
            .iter()
            .map(|column| (column.name().to_owned(), column.type_().clone()))
            .collect();
        for (index, (name, ty)) in columns.iter().enumerate() {
            if columns[..index].iter().any(|(other, _)| other == name) {
                return Err(PgSourceError::Shape(format!(
                    "{what} has two columns named `{name}`; expected unique names (use AS)"
                )));
            }
            if !supported(ty) {
                return Err(PgSourceError::Shape(format!(
                    "column `{name}`: {}",
                    unsupported(ty)
                )));
            }
        }
        let key = match &config.key {
            Some(name) => Some(Self::key(&columns, name, &what)?),
            None => None,
        };
        if config.partitions > 1 {
            match &key {
                Some(key) if key.integer => {}
                Some(key) => {
                    return Err(PgSourceError::Shape(format!(
                        "partitions need an integer key (smallint, integer or bigint); \
                         `{}` is `{}`",
                        key.name,
                        columns[key.index].1.name()
                    )))
                }
                None => {
                    return Err(PgSourceError::Shape(
                        "partitions need `key`, an integer column to split".to_owned(),
                    ))
                }
            }
        }
        Ok(Plan { base, columns, key })
    }

    fn key(columns: &[(String, Type)], name: &str, what: &str) -> Result<Key, PgSourceError> {
        let Some(index) = columns.iter().position(|(column, _)| column == name) else {
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            return Err(PgSourceError::Shape(format!(
                "the key column `{name}` is not in {what}'s result; its columns are: {}",
                names.join(", ")
            )));
        };
        let ty = &columns[index].1;
        let base = match ty.kind() {
            Kind::Domain(base) => base,
            _ => ty,
        };
        let orderable = matches!(ty.kind(), Kind::Enum(_))
            || matches!(
                *base,
                Type::INT2
                    | Type::INT4
                    | Type::INT8
                    | Type::OID
                    | Type::NUMERIC
                    | Type::FLOAT4
                    | Type::FLOAT8
                    | Type::TEXT
                    | Type::VARCHAR
                    | Type::BPCHAR
                    | Type::NAME
                    | Type::UUID
                    | Type::DATE
                    | Type::TIME
                    | Type::TIMESTAMP
                    | Type::TIMESTAMPTZ
            );
        if !orderable {
            return Err(PgSourceError::Shape(format!(
                "the key column `{name}` is `{}`; expected a column to order and resume \
                 by: an integer, numeric, text, uuid, date or timestamp",
                ty.name()
            )));
        }
        Ok(Key {
            name: name.to_owned(),
            index,
            cast: format!("{}.{}", ident(ty.schema()), ident(ty.name())),
            integer: matches!(*base, Type::INT2 | Type::INT4 | Type::INT8),
        })
    }

    /// The key column, if configured.
    pub(crate) fn key_column(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The query a single cursor reads: in key order, after `$1` (the last key, as
    /// text) when `after`. Rows whose key is null come last, also after a resume, so
    /// that they are dead-lettered rather than skipped.
    pub(crate) fn cursor_sql(&self, after: bool) -> String {
        let mut sql = format!("SELECT * FROM ({}) AS {ALIAS}", self.base);
        if let Some(key) = &self.key {
            let column = format!("{ALIAS}.{}", ident(&key.name));
            if after {
                sql += &format!(
                    " WHERE {column} > $1::text::{} OR {column} IS NULL",
                    key.cast
                );
            }
            sql += &format!(" ORDER BY {column}");
        }
        sql
    }

    /// The integer key's least and greatest values and the row count after `$1` (the
    /// last key, an `int8`, or null to count from the start), and the count of rows
    /// whose key is null (pages cannot hold them): one scan.
    pub(crate) fn bounds_sql(&self) -> String {
        let column = self.key_sql();
        let after = format!("FILTER (WHERE $1::int8 IS NULL OR {column} > $1::int8)");
        format!(
            "SELECT (min({column}) {after})::int8, (max({column}) {after})::int8, \
             count({column}) {after}, count(*) - count({column}) FROM ({}) AS {ALIAS}",
            self.base
        )
    }

    /// One page of the integer key's range, `$1 <= key <= $2`, in key order.
    pub(crate) fn page_sql(&self) -> String {
        let column = self.key_sql();
        format!(
            "SELECT * FROM ({}) AS {ALIAS} WHERE {column} >= $1::int8 AND {column} <= $2::int8 \
             ORDER BY {column}",
            self.base
        )
    }

    fn key_sql(&self) -> String {
        let name = self.key.as_ref().map_or("", |key| key.name.as_str());
        format!("{ALIAS}.{}", ident(name))
    }

    /// `row`'s key, if there is one and it converts (not null).
    pub(crate) fn key_of(&self, row: &Row) -> Option<Value> {
        let key = self.key.as_ref()?;
        let cell: Cell = row.try_get(key.index).ok()?;
        to_json(&self.columns[key.index].1, cell.0)
            .ok()
            .filter(|value| !value.is_null())
    }

    /// `row` as a JSON object of its columns; `Err` names the column that does not
    /// convert.
    pub(crate) fn convert(&self, row: &Row) -> Result<Value, PgSourceError> {
        let mut object = Map::with_capacity(self.columns.len());
        for (index, (name, ty)) in self.columns.iter().enumerate() {
            let cell: Cell = row.try_get(index).map_err(|error| PgSourceError::Value {
                column: name.clone(),
                message: error.to_string(),
            })?;
            let value = to_json(ty, cell.0).map_err(|message| PgSourceError::Value {
                column: name.clone(),
                message,
            })?;
            object.insert(name.clone(), value);
        }
        Ok(Value::Object(object))
    }
}
