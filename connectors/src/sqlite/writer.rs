//! One worker's SQLite connection and the batched, row-by-row-forgiving write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, TransactionBehavior};

use super::error::{is_row_error, SqliteError};
use super::value::row;
use super::SqliteSinkConfig;
use crate::Record;

/// How long a write waits for another connection's lock by default.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One worker's connection to the sink's database, with its insert statement.
#[derive(Debug)]
pub struct SqliteWriter {
    connection: Connection,
    path: PathBuf,
    insert: String,
    columns: Vec<String>,
    key: Vec<String>,
}

impl SqliteWriter {
    /// Opens (creating it if missing) the database at `config.path`, relative to `base`
    /// (the pipeline file's directory), in WAL mode with `synchronous=NORMAL` and the
    /// busy timeout; creates the table if asked, or checks it has every column; and
    /// prepares the insert statement.
    pub fn open(config: &SqliteSinkConfig, base: &Path) -> Result<SqliteWriter, SqliteError> {
        validate(config)?;
        let path = base.join(&config.path);
        let open_error = |source| SqliteError::Open {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(open_error)?;
        connection
            .busy_timeout(
                config
                    .busy_timeout
                    .map_or(DEFAULT_BUSY_TIMEOUT, |span| span.0),
            )
            .map_err(open_error)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::NotWal { path, mode });
        }
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        prepare_table(&connection, config, &path, true)?;
        let insert = insert_statement(config);
        connection
            .prepare_cached(&insert)
            .map_err(|source| SqliteError::Table {
                path: path.clone(),
                table: config.table.clone(),
                source,
            })?;
        Ok(SqliteWriter {
            connection,
            path,
            insert,
            columns: config.columns.clone(),
            key: config.key.clone(),
        })
    }

    /// Writes `batch` in one transaction (none for an empty batch). Returns the rows
    /// rejected for their own data, as (index in `batch`, why), the rest being
    /// committed. Err means nothing of the batch was written;
    /// [`SqliteError::is_transient`] says whether to retry it.
    pub fn write(&mut self, batch: &[Record]) -> Result<Vec<(usize, String)>, SqliteError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let write_error = |source| SqliteError::Write {
            path: self.path.clone(),
            source,
        };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(write_error)?;
        let mut rejected = Vec::new();
        {
            let mut statement = transaction
                .prepare_cached(&self.insert)
                .map_err(write_error)?;
            for (index, record) in batch.iter().enumerate() {
                let values = match row(&record.value, &self.columns, &self.key) {
                    Ok(values) => values,
                    Err(why) => {
                        rejected.push((index, why));
                        continue;
                    }
                };
                match statement.execute(params_from_iter(values)) {
                    Ok(_) => {}
                    Err(error) if is_row_error(&error) => {
                        rejected.push((index, format!("SQLite refused the row: {error}")));
                    }
                    // Dropping the transaction rolls the whole batch back.
                    Err(error) => return Err(write_error(error)),
                }
            }
        }
        transaction.commit().map_err(write_error)?;
        Ok(rejected)
    }
}

/// What the configuration alone can get wrong.
pub(super) fn validate(config: &SqliteSinkConfig) -> Result<(), SqliteError> {
    if config.table.is_empty() {
        return Err(SqliteError::Config("`table` is empty".into()));
    }
    if config.columns.is_empty() {
        return Err(SqliteError::Config("`columns` is empty".into()));
    }
    for (index, column) in config.columns.iter().enumerate() {
        if config.columns[..index].contains(column) {
            return Err(SqliteError::Config(format!(
                "column `{column}` is listed twice in `columns`"
            )));
        }
    }
    if let Some(stray) = config.key.iter().find(|key| !config.columns.contains(key)) {
        return Err(SqliteError::Config(format!(
            "key `{stray}` is not one of `columns`"
        )));
    }
    Ok(())
}

/// Checks the table has every column; when it is missing, creates it if `create` and
/// `create_table` allows, or only says whether it may be created. Ok(true) when the
/// table is there (now).
pub(super) fn prepare_table(
    connection: &Connection,
    config: &SqliteSinkConfig,
    path: &Path,
    create: bool,
) -> Result<bool, SqliteError> {
    let table_error = |source| SqliteError::Table {
        path: path.to_owned(),
        table: config.table.clone(),
        source,
    };
    let existing = table_columns(connection, &config.table).map_err(table_error)?;
    if existing.is_empty() {
        if !config.create_table.unwrap_or(true) {
            return Err(SqliteError::MissingTable {
                path: path.to_owned(),
                table: config.table.clone(),
            });
        }
        if !create {
            return Ok(false);
        }
        connection
            .execute_batch(&create_statement(config))
            .map_err(table_error)?;
        return Ok(true);
    }
    match config
        .columns
        .iter()
        .find(|column| !existing.contains(column))
    {
        Some(column) => Err(SqliteError::MissingColumn {
            path: path.to_owned(),
            table: config.table.clone(),
            column: column.clone(),
        }),
        None => Ok(true),
    }
}

/// The table's column names; empty when there is no such table.
fn table_columns(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = statement.query_map([table], |row| row.get(0))?;
    names.collect()
}

/// `CREATE TABLE IF NOT EXISTS "t" ("a", "b", PRIMARY KEY ("a"))`: columns untyped.
fn create_statement(config: &SqliteSinkConfig) -> String {
    let mut parts: Vec<String> = config.columns.iter().map(|column| quote(column)).collect();
    if !config.key.is_empty() {
        parts.push(format!("PRIMARY KEY ({})", quoted_list(&config.key)));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote(&config.table),
        parts.join(", ")
    )
}

/// The insert, or the upsert on the key.
pub(super) fn insert_statement(config: &SqliteSinkConfig) -> String {
    let placeholders: Vec<String> = (1..=config.columns.len())
        .map(|n| format!("?{n}"))
        .collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(&config.table),
        quoted_list(&config.columns),
        placeholders.join(", ")
    );
    if !config.key.is_empty() {
        let updates: Vec<String> = config
            .columns
            .iter()
            .filter(|column| !config.key.contains(column))
            .map(|column| format!("{0} = excluded.{0}", quote(column)))
            .collect();
        sql.push_str(&format!(" ON CONFLICT ({}) DO ", quoted_list(&config.key)));
        if updates.is_empty() {
            sql.push_str("NOTHING");
        } else {
            sql.push_str(&format!("UPDATE SET {}", updates.join(", ")));
        }
    }
    sql
}

/// An SQL identifier, double-quoted, inner quotes doubled.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn quoted_list(identifiers: &[String]) -> String {
    identifiers
        .iter()
        .map(|name| quote(name))
        .collect::<Vec<_>>()
        .join(", ")
}
