//! What can go wrong reading PostgreSQL, and which of it a reconnect cures.

use postgres::error::SqlState;

/// Why the postgres source could not open, read or checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum PgSourceError {
    /// `url` is not a libpq connection string or `postgres://` URI.
    #[error("`url` is not a PostgreSQL connection string: {0}")]
    Url(postgres::Error),
    /// The server did not answer, refused the connection or the login.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(postgres::Error),
    /// The server refused a statement: the query, a missing table, a permission.
    #[error("{what}: {message}")]
    Query {
        /// What was being done (`the query`, `the cursor`, `the key range`).
        what: String,
        /// The server's message (with its detail and hint when it gave them).
        message: String,
        /// Whether a new connection may cure it (the connection dropped).
        lost: bool,
    },
    /// The query's result does not suit the source: no key column, a column whose
    /// type has no JSON conversion, a key that partitions cannot split.
    #[error("{0}")]
    Shape(String),
    /// A value the server sent does not convert.
    #[error("column `{column}`: {message}")]
    Value {
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
    /// The key column holds the same value twice: resuming after it would skip rows.
    #[error(
        "the key column `{column}` is not unique: two rows have {column} = {value}; \
         resuming after a key needs a unique key"
    )]
    DuplicateKey {
        /// The key column.
        column: String,
        /// The repeated value.
        value: String,
    },
    /// The checkpoint file cannot be read or written, or is not this source's.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl PgSourceError {
    /// `error` while doing `what`, with the server's message.
    pub(crate) fn query(what: &str, error: &postgres::Error) -> Self {
        PgSourceError::Query {
            what: what.to_owned(),
            message: server_message(error),
            lost: connection_lost(error),
        }
    }

    /// Whether a new connection may cure it: the connection dropped, or could not
    /// be made (the server is down or restarting).
    pub fn is_transient(&self) -> bool {
        match self {
            PgSourceError::Connect(_) => true,
            PgSourceError::Query { lost, .. } => *lost,
            _ => false,
        }
    }
}

/// The server's message with its detail and hint, or the client's error.
pub(crate) fn server_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            if let Some(detail) = db.detail() {
                message += &format!(" ({detail})");
            }
            if let Some(hint) = db.hint() {
                message += &format!("; hint: {hint}");
            }
            message
        }
        None => error.to_string(),
    }
}

/// Whether `error` means the connection is gone: closed, broken, terminated by an
/// administrator or a server shutdown, or timed out idle in a transaction.
pub(crate) fn connection_lost(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                ]
                .contains(code)
        }
        // No SQLSTATE: an I/O error on the socket is a loss; the client's own
        // errors (a conversion, a parameter count) are not.
        None => {
            std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
        }
    }
}
