//! The PostgreSQL sink's healthcheck: the server answers and lets the login in, and the
//! table is there (or may be created) with every column, a unique index for the key
//! and the privileges a write needs. It changes nothing.

use super::sql::{validate, TableName};
use super::table::{can_create, inspect};
use super::PostgresSinkConfig;
use crate::postgres::{PostgresError, Server};
use crate::Problem;

impl PostgresSinkConfig {
    /// What stops this sink from writing, each a [`Problem`] of part `sink` whose
    /// message starts with the key at fault: the configuration, a server unreachable
    /// or refusing the login (`url`), a missing table (with `create_table = false`)
    /// or no right to create it (`table`), missing columns (`columns`), an upsert key
    /// no unique index covers (`key`), a missing `INSERT` or `UPDATE` privilege.
    pub fn check(&self) -> Vec<Problem> {
        self.find_problems()
            .into_iter()
            .map(|error| Problem {
                part: "sink".into(),
                message: error.to_string(),
            })
            .collect()
    }

    fn find_problems(&self) -> Vec<PostgresError> {
        if let Err(error) = validate(self) {
            return vec![error];
        }
        let table = match TableName::parse(&self.table) {
            Ok(table) => table,
            Err(error) => return vec![error],
        };
        let server = match Server::parse(
            &self.url,
            self.connect_timeout.map(|span| span.0),
            self.statement_timeout.map(|span| span.0),
        ) {
            Ok(server) => server,
            Err(error) => return vec![error],
        };
        let mut client = match server.connect() {
            Ok(client) => client,
            Err(error) => return vec![error],
        };
        let query_error = |source| PostgresError::Query {
            server: server.name().to_owned(),
            what: format!("inspecting {}", self.table),
            source,
        };
        match inspect(&mut client, &table) {
            Ok(Some(shape)) => shape.findings(self, server.name()),
            Ok(None) if !self.create_table => vec![PostgresError::MissingTable {
                server: server.name().to_owned(),
                table: self.table.clone(),
            }],
            Ok(None) => match can_create(&mut client, &table) {
                Ok(true) => Vec::new(),
                Ok(false) => vec![PostgresError::Privilege {
                    server: server.name().to_owned(),
                    privilege: "CREATE",
                    on: format!(
                        "the schema of {} (to create it, as create_table = true asks)",
                        self.table
                    ),
                }],
                Err(source) => vec![query_error(source)],
            },
            Err(source) => vec![query_error(source)],
        }
    }
}
