//! The sink's statements, as text: every name quoted, so a table or column is the one
//! written in the configuration, whatever its case or characters.

use super::{Method, PostgresSinkConfig};
use crate::postgres::PostgresError;

/// The most parameters one statement may bind: the protocol counts them in 16 bits.
pub(super) const MAX_PARAMETERS: usize = 65_535;

/// The temporary table an upsert copies a batch into, one per connection.
pub(super) const STAGE: &str = "brigade_stage";

/// A table as configured: `name` or `schema.name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TableName {
    schema: Option<String>,
    name: String,
}

impl TableName {
    /// Reads `table`: one or two non-empty parts split by a dot.
    pub fn parse(table: &str) -> Result<TableName, PostgresError> {
        let parts: Vec<&str> = table.split('.').collect();
        let bad = || {
            PostgresError::Config(format!(
                "`table` is `{table}`; expected `name` or `schema.name`"
            ))
        };
        match parts.as_slice() {
            [name] if !name.is_empty() => Ok(TableName {
                schema: None,
                name: (*name).to_owned(),
            }),
            [schema, name] if !schema.is_empty() && !name.is_empty() => Ok(TableName {
                schema: Some((*schema).to_owned()),
                name: (*name).to_owned(),
            }),
            _ => Err(bad()),
        }
    }

    /// `"schema"."name"` or `"name"`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&self.name)),
            None => quote(&self.name),
        }
    }

    /// The schema, if the configuration names one.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The text for advisory locks and messages: `schema.name` or `name`.
    pub fn plain(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// What the configuration alone can get wrong; the key's positions in `columns`.
pub(super) fn validate(config: &PostgresSinkConfig) -> Result<Vec<usize>, PostgresError> {
    TableName::parse(&config.table)?;
    if config.columns.is_empty() {
        return Err(PostgresError::Config("`columns` is empty".into()));
    }
    for (index, column) in config.columns.iter().enumerate() {
        if column.is_empty() {
            return Err(PostgresError::Config(
                "`columns` holds an empty name".into(),
            ));
        }
        if config.columns[..index].contains(column) {
            return Err(PostgresError::Config(format!(
                "column `{column}` is listed twice in `columns`"
            )));
        }
    }
    let mut positions = Vec::new();
    for (index, key) in config.key.iter().enumerate() {
        if config.key[..index].contains(key) {
            return Err(PostgresError::Config(format!("`key` lists `{key}` twice")));
        }
        match config.columns.iter().position(|column| column == key) {
            Some(position) => positions.push(position),
            None => {
                return Err(PostgresError::Config(format!(
                    "key `{key}` is not one of `columns`"
                )))
            }
        }
    }
    Ok(positions)
}

/// The statements one writer runs, made once from its configuration.
#[derive(Clone, Debug)]
pub(super) struct Statements {
    /// `COPY target (columns) FROM STDIN`: into the table, or the stage for an upsert.
    pub copy: String,
    /// `INSERT INTO table SELECT … FROM stage ON CONFLICT …`, for an upsert by COPY.
    pub merge: Option<String>,
    /// `CREATE TEMP TABLE stage …`, for an upsert by COPY.
    pub create_stage: Option<String>,
    /// `INSERT INTO table (columns) VALUES `: the head of a multi-row insert.
    pub insert_head: String,
    /// ` ON CONFLICT (key) DO …`, or empty without a key.
    pub on_conflict: String,
    /// Columns per row.
    pub width: usize,
    /// The method.
    pub method: Method,
}

impl Statements {
    /// The statements of `config` (already validated) for `table`.
    pub fn new(config: &PostgresSinkConfig, table: &TableName) -> Statements {
        let target = table.quoted();
        let columns = quoted_list(&config.columns);
        let on_conflict = on_conflict(config);
        let upsert_by_copy = !config.key.is_empty() && config.method == Method::Copy;
        let (copy, merge, create_stage) = if upsert_by_copy {
            (
                format!("COPY {STAGE} ({columns}) FROM STDIN"),
                Some(format!(
                    "INSERT INTO {target} ({columns}) SELECT {columns} FROM {STAGE}{on_conflict}"
                )),
                Some(format!(
                    "CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS \
                     SELECT {columns} FROM {target} WITH NO DATA"
                )),
            )
        } else {
            (format!("COPY {target} ({columns}) FROM STDIN"), None, None)
        };
        Statements {
            copy,
            merge,
            create_stage,
            insert_head: format!("INSERT INTO {target} ({columns}) VALUES "),
            on_conflict,
            width: config.columns.len(),
            method: config.method,
        }
    }

    /// Whether rows are upserted on a key.
    pub fn keyed(&self) -> bool {
        !self.on_conflict.is_empty()
    }

    /// The rows one multi-row `INSERT` may carry.
    pub fn rows_per_insert(&self) -> usize {
        (MAX_PARAMETERS / self.width).max(1)
    }

    /// A multi-row `INSERT` of `rows` rows, with its conflict clause.
    pub fn insert(&self, rows: usize) -> String {
        let mut sql = String::with_capacity(self.insert_head.len() + rows * self.width * 8);
        sql += &self.insert_head;
        let mut parameter = 0;
        for row in 0..rows {
            if row > 0 {
                sql.push(',');
            }
            sql.push('(');
            for column in 0..self.width {
                if column > 0 {
                    sql.push(',');
                }
                parameter += 1;
                sql += &format!("${parameter}");
            }
            sql.push(')');
        }
        sql += &self.on_conflict;
        sql
    }
}

/// `CREATE TABLE IF NOT EXISTS table (column text, …, PRIMARY KEY (key))`.
pub(super) fn create_table(config: &PostgresSinkConfig, table: &TableName) -> String {
    let mut parts: Vec<String> = config
        .columns
        .iter()
        .map(|column| format!("{} text", quote(column)))
        .collect();
    if !config.key.is_empty() {
        parts.push(format!("PRIMARY KEY ({})", quoted_list(&config.key)));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        table.quoted(),
        parts.join(", ")
    )
}

/// ` ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c, …` (`DO NOTHING` when every
/// column is in the key); empty without a key.
fn on_conflict(config: &PostgresSinkConfig) -> String {
    if config.key.is_empty() {
        return String::new();
    }
    let updates: Vec<String> = config
        .columns
        .iter()
        .filter(|column| !config.key.contains(column))
        .map(|column| format!("{0} = EXCLUDED.{0}", quote(column)))
        .collect();
    let action = if updates.is_empty() {
        "NOTHING".to_owned()
    } else {
        format!("UPDATE SET {}", updates.join(", "))
    };
    format!(" ON CONFLICT ({}) DO {action}", quoted_list(&config.key))
}

/// An SQL identifier, double-quoted, inner quotes doubled.
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn quoted_list(identifiers: &[String]) -> String {
    identifiers
        .iter()
        .map(|name| quote(name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_a_name_or_a_schema_and_a_name() {
        assert_eq!(TableName::parse("people").unwrap().quoted(), "\"people\"");
        assert_eq!(
            TableName::parse("crm.Odd\"Name").unwrap().quoted(),
            "\"crm\".\"Odd\"\"Name\""
        );
        for bad in ["", "a.", ".b", "a.b.c"] {
            let error = TableName::parse(bad).unwrap_err();
            assert!(error.to_string().contains("`table`"), "{error}");
        }
    }

    #[test]
    fn an_insert_numbers_its_parameters_row_after_row() {
        let config = PostgresSinkConfig {
            url: String::new(),
            table: "t".into(),
            columns: vec!["id".into(), "v".into()],
            key: vec!["id".into()],
            method: Method::Insert,
            create_table: false,
            connect_timeout: None,
            statement_timeout: None,
        };
        let statements = Statements::new(&config, &TableName::parse("t").unwrap());
        assert_eq!(
            statements.insert(2),
            "INSERT INTO \"t\" (\"id\", \"v\") VALUES ($1,$2),($3,$4) \
             ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""
        );
        assert_eq!(statements.rows_per_insert(), 32_767);
    }
}
