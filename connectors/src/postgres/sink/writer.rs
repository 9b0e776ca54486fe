//! One worker's connection and the batched write that finds a batch's bad rows by
//! splitting it.

use std::fmt;
use std::io::Write;

use postgres::types::ToSql;
use postgres::{Client, Transaction};

use super::copy::encode_line;
use super::param::Text;
use super::row::{last_of_each_key, Row};
use super::sql::{validate, Statements, TableName, STAGE};
use super::table::{create, inspect};
use super::{Method, PostgresSinkConfig};
use crate::postgres::error::is_row_error;
use crate::postgres::{describe, PostgresError, Server};
use crate::Record;

/// One worker's connection to the sink's server, and the statements it writes with.
pub struct PostgresWriter {
    server: Server,
    table: String,
    /// `None` once the connection was lost: the next write connects again.
    client: Option<Client>,
    statements: Statements,
    columns: Vec<String>,
    key: Vec<usize>,
}

impl fmt::Debug for PostgresWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresWriter")
            .field("server", &self.server.name())
            .field("table", &self.table)
            .field("connected", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresWriter {
    /// Connects; creates the table if it is missing and `create_table` allows, or
    /// fails naming what is wrong with it (missing, a column missing, no unique index
    /// for the key, a privilege lacking).
    pub fn open(config: &PostgresSinkConfig) -> Result<PostgresWriter, PostgresError> {
        let key = validate(config)?;
        let table = TableName::parse(&config.table)?;
        let server = Server::parse(
            &config.url,
            config.connect_timeout.map(|span| span.0),
            config.statement_timeout.map(|span| span.0),
        )?;
        let mut client = server.connect()?;
        let query_error = |what: &str| {
            let server = server.name().to_owned();
            let what = format!("{what} {}", config.table);
            move |source| PostgresError::Query {
                server,
                what,
                source,
            }
        };
        let shape = match inspect(&mut client, &table).map_err(query_error("inspecting"))? {
            Some(shape) => shape,
            None if config.create_table => {
                create(&mut client, config, &table).map_err(query_error("creating"))?;
                inspect(&mut client, &table)
                    .map_err(query_error("inspecting"))?
                    .ok_or_else(|| PostgresError::MissingTable {
                        server: server.name().to_owned(),
                        table: config.table.clone(),
                    })?
            }
            None => {
                return Err(PostgresError::MissingTable {
                    server: server.name().to_owned(),
                    table: config.table.clone(),
                })
            }
        };
        if let Some(problem) = shape.findings(config, server.name()).into_iter().next() {
            return Err(problem);
        }
        let mut writer = PostgresWriter {
            statements: Statements::new(config, &table),
            server,
            table: config.table.clone(),
            client: None,
            columns: config.columns.clone(),
            key,
        };
        writer.prepare_session(&mut client)?;
        writer.client = Some(client);
        Ok(writer)
    }

    /// Writes `batch` in one transaction (none for an empty batch). Returns the rows
    /// refused for their own data, as (index in `batch`, why), the rest committed.
    /// Err means nothing of the batch was written; [`PostgresError::is_transient`]
    /// says whether to retry it.
    pub fn write(&mut self, batch: &[Record]) -> Result<Vec<(usize, String)>, PostgresError> {
        let mut rejected = Vec::new();
        let mut rows = Vec::with_capacity(batch.len());
        for (index, record) in batch.iter().enumerate() {
            match Row::of(index, &record.value, &self.columns, &self.key) {
                Ok(row) => rows.push(row),
                Err(why) => rejected.push((index, why)),
            }
        }
        if rows.is_empty() {
            return Ok(rejected);
        }
        let mut client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                let mut client = self.server.connect()?;
                self.prepare_session(&mut client)?;
                client
            }
        };
        let result = write_rows(&mut client, &self.statements, &rows, &mut rejected);
        if !client.is_closed() {
            self.client = Some(client);
        }
        result.map_err(|source| PostgresError::Query {
            server: self.server.name().to_owned(),
            what: format!("writing a batch to {}", self.table),
            source,
        })?;
        rejected.sort_unstable_by_key(|(index, _)| *index);
        Ok(rejected)
    }

    /// What a new connection needs before it writes: the stage table of an upsert.
    fn prepare_session(&self, client: &mut Client) -> Result<(), PostgresError> {
        if let Some(create_stage) = &self.statements.create_stage {
            client
                .batch_execute(create_stage)
                .map_err(|source| PostgresError::Query {
                    server: self.server.name().to_owned(),
                    what: format!("creating the temporary table {STAGE} for {}", self.table),
                    source,
                })?;
        }
        Ok(())
    }
}

/// Writes `rows` in one transaction; when the server refuses the batch for a row's
/// data, writes it again in halves, each in a savepoint of a new transaction, until
/// the refused rows are alone, and adds those to `rejected`.
fn write_rows(
    client: &mut Client,
    statements: &Statements,
    rows: &[Row],
    rejected: &mut Vec<(usize, String)>,
) -> Result<(), postgres::Error> {
    let mut transaction = client.transaction()?;
    match put(&mut transaction, statements, rows, false) {
        Ok(()) => return transaction.commit(),
        Err(error) if is_row_error(&error) => {
            transaction.rollback()?;
            if let [row] = rows {
                rejected.push((row.index, refusal(&error)));
                return Ok(());
            }
        }
        Err(error) => return Err(error),
    }
    let mut transaction = client.transaction()?;
    let (first, second) = rows.split_at(rows.len() / 2);
    bisect(&mut transaction, statements, first, rejected)?;
    bisect(&mut transaction, statements, second, rejected)?;
    transaction.commit()
}

/// Writes `rows` in a savepoint of `transaction`; on a row's refusal rolls it back
/// and splits them, down to the single rows refused.
fn bisect(
    transaction: &mut Transaction,
    statements: &Statements,
    rows: &[Row],
    rejected: &mut Vec<(usize, String)>,
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut savepoint = transaction.savepoint("brigade_part")?;
    match put(&mut savepoint, statements, rows, true) {
        Ok(()) => savepoint.commit(),
        Err(error) if is_row_error(&error) => {
            savepoint.rollback()?;
            if let [row] = rows {
                rejected.push((row.index, refusal(&error)));
                return Ok(());
            }
            let (first, second) = rows.split_at(rows.len() / 2);
            bisect(transaction, statements, first, rejected)?;
            bisect(transaction, statements, second, rejected)
        }
        Err(error) => Err(error),
    }
}

/// Sends `rows` (the last of each key, for an upsert) by the configured method.
/// `reused` says the stage table may hold an earlier part's rows.
fn put(
    transaction: &mut Transaction,
    statements: &Statements,
    rows: &[Row],
    reused: bool,
) -> Result<(), postgres::Error> {
    let rows = last_of_each_key(rows, statements.keyed());
    match statements.method {
        Method::Copy => {
            if reused && statements.merge.is_some() {
                transaction.batch_execute(&format!("TRUNCATE {STAGE}"))?;
            }
            let mut text = Vec::with_capacity(rows.len() * 64);
            for row in &rows {
                encode_line(&row.cells, &mut text);
            }
            let mut writer = transaction.copy_in(statements.copy.as_str())?;
            if let Err(error) = writer.write_all(&text) {
                // The writer fails only when sending does, with the client's error
                // inside; finishing then fails with it too.
                if let Some(Ok(error)) = error
                    .into_inner()
                    .map(|inner| inner.downcast::<postgres::Error>())
                {
                    return Err(*error);
                }
            }
            writer.finish()?;
            if let Some(merge) = &statements.merge {
                transaction.execute(merge.as_str(), &[])?;
            }
        }
        Method::Insert => {
            for chunk in rows.chunks(statements.rows_per_insert()) {
                let texts: Vec<Option<Text>> = chunk
                    .iter()
                    .flat_map(|row| row.cells.iter().map(|cell| cell.as_deref().map(Text)))
                    .collect();
                let parameters: Vec<&(dyn ToSql + Sync)> = texts
                    .iter()
                    .map(|text| text as &(dyn ToSql + Sync))
                    .collect();
                transaction.execute(statements.insert(chunk.len()).as_str(), &parameters)?;
            }
        }
    }
    Ok(())
}

/// Why the server refused a row, for its dead letter.
fn refusal(error: &postgres::Error) -> String {
    format!("PostgreSQL refused the row: {}", describe(error))
}
