//! What can go wrong opening or writing the SQLite sink, and which of it is worth a retry.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// An error of the SQLite sink: its configuration, its database, or a whole batch.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The configuration cannot describe a table write.
    #[error("sqlite sink: {0}")]
    Config(String),
    /// The database could not be opened or set up (WAL, busy timeout).
    #[error("cannot open SQLite database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database would not switch to WAL mode.
    #[error("SQLite database {path} stays in journal mode `{mode}`, not WAL")]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode it reports.
        mode: String,
    },
    /// The table is missing and `create_table = false`.
    #[error("SQLite database {path} has no table `{table}` (and create_table = false)")]
    MissingTable {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
    },
    /// The table exists without a configured column.
    #[error("table `{table}` in SQLite database {path} has no column `{column}`")]
    MissingColumn {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The configured column it lacks.
        column: String,
    },
    /// The table could not be created or its insert statement not prepared (e.g. an
    /// upsert key that is not the table's primary key or a unique index).
    #[error("table `{table}` in SQLite database {path}: {source}")]
    Table {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A whole batch failed and was rolled back: nothing of it is in the table.
    #[error("writing a batch to SQLite database {path}: {source}")]
    Write {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl SqliteError {
    /// Whether the same work may succeed later: the database was busy or locked by
    /// another connection, or an I/O error (disk full included) got in the way.
    pub fn is_transient(&self) -> bool {
        match self {
            SqliteError::Open { source, .. }
            | SqliteError::Table { source, .. }
            | SqliteError::Write { source, .. } => is_transient_code(source),
            SqliteError::Config(_)
            | SqliteError::NotWal { .. }
            | SqliteError::MissingTable { .. }
            | SqliteError::MissingColumn { .. } => false,
        }
    }
}

/// Busy, locked or I/O: a condition of the database, not of the statement.
pub(crate) fn is_transient_code(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
        )
    )
}

/// A row's own fault: SQLite refused its values, not the database.
pub(crate) fn is_row_error(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig)
    )
}
