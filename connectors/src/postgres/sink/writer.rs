//! One worker's connection and the batched write that finds a batch's bad rows by
//! splitting it.

use std::fmt;
use std::io::Write;

use postgres::types::ToSql;
use postgres::{Client, Statement, Transaction};

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
    session: Option<Session>,
    statements: Statements,
    columns: Vec<String>,
    key: Vec<usize>,
}

impl fmt::Debug for PostgresWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresWriter")
            .field("server", &self.server.name())
            .field("table", &self.table)
            .field("connected", &self.session.is_some())
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
            session: None,
            columns: config.columns.clone(),
            key,
        };
        writer.session = Some(writer.prepare_session(client)?);
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
        let mut session = match self.session.take() {
            Some(session) if !session.client.is_closed() => session,
            _ => self.prepare_session(self.server.connect()?)?,
        };
        let result = write_rows(&mut session, &self.statements, &rows, &mut rejected);
        if !session.client.is_closed() {
            self.session = Some(session);
        }
        result.map_err(|source| PostgresError::Query {
            server: self.server.name().to_owned(),
            what: format!("writing a batch to {}", self.table),
            source,
        })?;
        rejected.sort_unstable_by_key(|(index, _)| *index);
        Ok(rejected)
    }

    /// A new connection made ready to write: the stage table of an upsert created,
    /// its COPY and merge statements prepared.
    fn prepare_session(&self, mut client: Client) -> Result<Session, PostgresError> {
        let query_error = |what: &str| {
            let server = self.server.name().to_owned();
            let what = format!("{what} for {}", self.table);
            move |source| PostgresError::Query {
                server,
                what,
                source,
            }
        };
        if let Some(create_stage) = &self.statements.create_stage {
            client
                .batch_execute(create_stage)
                .map_err(query_error("creating the temporary table"))?;
        }
        let copy = match self.statements.method {
            Method::Copy => Some(
                client
                    .prepare(&self.statements.copy)
                    .map_err(query_error("preparing the COPY"))?,
            ),
            Method::Insert => None,
        };
        let merge = match &self.statements.merge {
            Some(merge) => Some(
                client
                    .prepare(merge)
                    .map_err(query_error("preparing the upsert"))?,
            ),
            None => None,
        };
        Ok(Session {
            client,
            copy,
            merge,
        })
    }
}

/// A live connection and the statements it prepared.
struct Session {
    client: Client,
    /// `COPY … FROM STDIN`, with the `copy` method.
    copy: Option<Statement>,
    /// `INSERT … SELECT … FROM stage ON CONFLICT …`, for an upsert by COPY.
    merge: Option<Statement>,
}

/// A session's prepared statements, beside the transaction that runs them: with a
/// COPY statement rows are copied, without one inserted.
#[derive(Clone, Copy)]
struct Prepared<'s> {
    copy: Option<&'s Statement>,
    merge: Option<&'s Statement>,
}

/// Writes `rows` in one transaction; when the server refuses the batch for a row's
/// data, writes it again in halves, each in a savepoint of a new transaction, until
/// the refused rows are alone, and adds those to `rejected`.
fn write_rows(
    session: &mut Session,
    statements: &Statements,
    rows: &[Row],
    rejected: &mut Vec<(usize, String)>,
) -> Result<(), postgres::Error> {
    let Session {
        client,
        copy,
        merge,
    } = session;
    let prepared = Prepared {
        copy: copy.as_ref(),
        merge: merge.as_ref(),
    };
    let mut transaction = client.transaction()?;
    match put(&mut transaction, statements, prepared, rows, false) {
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
    bisect(&mut transaction, statements, prepared, first, rejected)?;
    bisect(&mut transaction, statements, prepared, second, rejected)?;
    transaction.commit()
}

/// Writes `rows` in a savepoint of `transaction`; on a row's refusal rolls it back
/// and splits them, down to the single rows refused.
fn bisect(
    transaction: &mut Transaction,
    statements: &Statements,
    prepared: Prepared,
    rows: &[Row],
    rejected: &mut Vec<(usize, String)>,
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut savepoint = transaction.savepoint("brigade_part")?;
    match put(&mut savepoint, statements, prepared, rows, true) {
        Ok(()) => savepoint.commit(),
        Err(error) if is_row_error(&error) => {
            savepoint.rollback()?;
            if let [row] = rows {
                rejected.push((row.index, refusal(&error)));
                return Ok(());
            }
            let (first, second) = rows.split_at(rows.len() / 2);
            bisect(transaction, statements, prepared, first, rejected)?;
            bisect(transaction, statements, prepared, second, rejected)
        }
        Err(error) => Err(error),
    }
}

/// Sends `rows` (the last of each key, for an upsert) by the configured method.
/// `reused` says the stage table may hold an earlier part's rows.
fn put(
    transaction: &mut Transaction,
    statements: &Statements,
    prepared: Prepared,
    rows: &[Row],
    reused: bool,
) -> Result<(), postgres::Error> {
    let rows = last_of_each_key(rows, statements.keyed());
    match prepared.copy {
        Some(copy) => {
            if reused && prepared.merge.is_some() {
                transaction.batch_execute(&format!("TRUNCATE {STAGE}"))?;
            }
            let mut text = Vec::with_capacity(rows.len() * 64);
            for row in &rows {
                encode_line(&row.cells, &mut text);
            }
            let mut writer = transaction.copy_in(copy)?;
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
            if let Some(merge) = prepared.merge {
                transaction.execute(merge, &[])?;
            }
        }
        None => {
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

/// Why the server refused a row, for its dead letter: its message and SQLSTATE, the
/// column (named by the server, or by COPY's context), its detail and other context.
fn refusal(error: &postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        return format!("PostgreSQL refused the row: {}", describe(error));
    };
    let mut text = format!(
        "PostgreSQL refused the row: {} (SQLSTATE {})",
        db.message(),
        db.code().code()
    );
    let copied = db.where_().and_then(copy_column);
    if let Some(column) = db.column().or(copied) {
        text += &format!("; column `{column}`");
    }
    if let Some(detail) = db.detail() {
        text += &format!("; {}", detail.replace('\n', " "));
    }
    if let Some(context) = db.where_().filter(|_| copied.is_none()) {
        text += &format!("; {}", context.replace('\n', "; "));
    }
    text
}

/// The column COPY's context names: `COPY t, line 1, column id: "x"` → `id`.
fn copy_column(context: &str) -> Option<&str> {
    let (_, after) = context.strip_prefix("COPY ")?.split_once(", column ")?;
    after.split(':').next()
}
