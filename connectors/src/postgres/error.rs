//! What can go wrong talking to PostgreSQL, and which of it is worth a retry: decided
//! by the SQLSTATE the server sends, or by the connection itself being lost.

use std::error::Error as _;

use postgres::error::DbError;

/// An error of a PostgreSQL connector: its configuration, its connection, its table,
/// or a statement.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The configuration cannot describe the work (a bad `url`, an empty `columns`).
    #[error("postgres: {0}")]
    Config(String),
    /// The server could not be reached, refused the login, or is starting or full.
    #[error("cannot connect to PostgreSQL at {server}: {}", describe(.source))]
    Connect {
        /// `user@host:port/dbname`.
        server: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// A statement failed: `what` says which work it was part of.
    #[error("PostgreSQL at {server}: {what}: {}", describe(.source))]
    Query {
        /// `user@host:port/dbname`.
        server: String,
        /// The work, naming its table: `writing a batch to public.people`.
        what: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The table is missing and the connector may not create it.
    #[error("`table`: PostgreSQL at {server} has no table {table} (and create_table = false)")]
    MissingTable {
        /// `user@host:port/dbname`.
        server: String,
        /// The table as configured.
        table: String,
    },
    /// The table lacks configured columns.
    #[error("`columns`: table {table} at {server} has no column {}", names(.columns))]
    MissingColumns {
        /// `user@host:port/dbname`.
        server: String,
        /// The table as configured.
        table: String,
        /// The configured columns it lacks.
        columns: Vec<String>,
    },
    /// An upsert key no unique index or primary key of the table covers exactly, so
    /// `ON CONFLICT` has nothing to find a row by.
    #[error(
        "`key`: table {table} at {server} has no primary key or unique index on exactly \
         ({}), which an upsert needs (a non-partial, non-deferrable one)",
        names(.key)
    )]
    NoUniqueKey {
        /// `user@host:port/dbname`.
        server: String,
        /// The table as configured.
        table: String,
        /// The configured key.
        key: Vec<String>,
    },
    /// The login may not do what the connector needs (`INSERT`, `UPDATE`, `CREATE`).
    #[error("`table`: the user at {server} lacks the {privilege} privilege on {on}")]
    Privilege {
        /// `user@host:port/dbname`.
        server: String,
        /// `INSERT`, `UPDATE` or `CREATE`.
        privilege: &'static str,
        /// The table, or the schema it would be created in.
        on: String,
    },
}

impl PostgresError {
    /// Whether the same work may succeed later: the server was unreachable, lost the
    /// connection, shut down or started up, had too many connections or too few
    /// resources, or aborted the transaction for a serialization failure, a deadlock,
    /// a lock or statement timeout ([`is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            PostgresError::Connect { source, .. } | PostgresError::Query { source, .. } => {
                is_transient(source)
            }
            PostgresError::Config(_)
            | PostgresError::MissingTable { .. }
            | PostgresError::MissingColumns { .. }
            | PostgresError::NoUniqueKey { .. }
            | PostgresError::Privilege { .. } => false,
        }
    }
}

/// Whether `error` is a condition of the server or the connection, not of the
/// statement: SQLSTATE class 08 (connection exception), 53 (insufficient resources,
/// `too many connections` among them), 40001 (serialization failure), 40P01
/// (deadlock), 55P03 (lock not available), 57014 (statement timeout, cancel), 57P01 to
/// 57P03 (shutdown, cannot connect now), 58030 (I/O error); or no SQLSTATE and the
/// connection closed or an I/O error (refused, reset, timed out).
pub fn is_transient(error: &postgres::Error) -> bool {
    match error.code() {
        Some(state) => {
            let code = state.code();
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code,
                    "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "58030"
                )
        }
        None => error.is_closed() || has_io_cause(error),
    }
}

/// Whether the server refused a row for its own data: SQLSTATE class 22 (data
/// exception: bad input syntax, out of range), 23 (integrity constraint: not null,
/// unique, check, foreign key), 21000 (a statement would change one row twice: two
/// rows of a batch with one key) or 54000 (a value too large).
pub(crate) fn is_row_error(error: &postgres::Error) -> bool {
    error.code().is_some_and(|state| {
        let code = state.code();
        code.starts_with("22") || code.starts_with("23") || matches!(code, "21000" | "54000")
    })
}

/// `error` in one line: the server's message with its SQLSTATE, detail, column and
/// context (`COPY people, line 1, column id: "x"`), or the client's error and cause.
pub fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => describe_db(db),
        None => error.to_string(),
    }
}

fn describe_db(db: &DbError) -> String {
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(column) = db.column() {
        text += &format!("; column `{column}`");
    }
    if let Some(detail) = db.detail() {
        text += &format!("; {detail}");
    }
    if let Some(context) = db.where_() {
        text += &format!("; {}", context.replace('\n', "; "));
    }
    text
}

fn has_io_cause(error: &postgres::Error) -> bool {
    let mut cause = error.source();
    while let Some(inner) = cause {
        if inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// `a`, `b`, joined for messages.
fn names(list: &[String]) -> String {
    list.iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
