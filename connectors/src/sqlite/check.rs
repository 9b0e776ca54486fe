//! The SQLite sink's healthcheck: the database can be opened or created, and the table
//! is right or can be created. It changes nothing on disk.

use std::fs::{self, OpenOptions};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::writer::{insert_statement, prepare_table, validate};
use super::{SqliteError, SqliteSinkConfig};
use crate::Problem;

impl SqliteSinkConfig {
    /// What stops this sink from starting, relative to `base` (the pipeline file's
    /// directory): the configuration, a database that cannot be opened or a directory
    /// where it cannot be created, a missing table (with `create_table = false`) or
    /// column, or an upsert key the table has no unique index on. Part `sink`.
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        match self.find_problem(base) {
            Ok(()) => Vec::new(),
            Err(message) => vec![Problem {
                part: "sink".into(),
                message,
            }],
        }
    }

    fn find_problem(&self, base: &Path) -> Result<(), String> {
        validate(self).map_err(|error| error.to_string())?;
        let path = base.join(&self.path);
        if !path.exists() {
            return probe_directory(&path);
        }
        if fs::metadata(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?
            .permissions()
            .readonly()
        {
            return Err(format!("SQLite database {} is read-only", path.display()));
        }
        let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|source| {
                SqliteError::Open {
                    path: path.clone(),
                    source,
                }
                .to_string()
            })?;
        let table_there =
            prepare_table(&connection, self, &path, false).map_err(|error| error.to_string())?;
        if table_there {
            connection
                .prepare(&insert_statement(self))
                .map_err(|source| {
                    SqliteError::Table {
                        path: path.clone(),
                        table: self.table.clone(),
                        source,
                    }
                    .to_string()
                })?;
        }
        Ok(())
    }
}

/// The database's directory exists and a file can be created in it (tried and removed).
fn probe_directory(database: &Path) -> Result<(), String> {
    let directory = match database.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() {
        return Err(format!(
            "cannot create SQLite database {}: directory {} does not exist",
            database.display(),
            directory.display()
        ));
    }
    let probe = directory.join(format!(".brigade-check-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|error| {
            format!(
                "cannot create SQLite database {}: directory {} is not writable: {error}",
                database.display(),
                directory.display()
            )
        })
}
