//! The target table as the catalog describes it: its columns, the unique indexes an
//! upsert can find rows by, the login's privileges; and its creation when asked.

use postgres::Client;

use super::sql::{create_table, TableName};
use super::PostgresSinkConfig;
use crate::postgres::PostgresError;

/// What the sink needs to know of an existing table.
#[derive(Debug)]
pub(super) struct Shape {
    columns: Vec<String>,
    /// The column sets of its non-partial, immediate unique indexes on plain columns.
    unique: Vec<Vec<String>>,
    can_insert: bool,
    can_update: bool,
}

/// The table's shape, `None` when there is no such table (or none the login sees).
pub(super) fn inspect(
    client: &mut Client,
    table: &TableName,
) -> Result<Option<Shape>, postgres::Error> {
    let row = client.query_one("SELECT to_regclass($1)::oid", &[&table.quoted()])?;
    let Some(oid): Option<u32> = row.get(0) else {
        return Ok(None);
    };
    let columns = client
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let unique = client
        .query(
            "SELECT array(SELECT a.attname::text FROM unnest(i.indkey) AS k \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) \
             FROM pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indimmediate \
                 AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[&oid],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let privileges = client.query_one(
        "SELECT has_table_privilege($1::oid, 'INSERT'), has_table_privilege($1::oid, 'UPDATE')",
        &[&oid],
    )?;
    Ok(Some(Shape {
        columns,
        unique,
        can_insert: privileges.get(0),
        can_update: privileges.get(1),
    }))
}

impl Shape {
    /// What keeps `config` from writing this table: missing columns, an upsert key no
    /// unique index covers exactly, a missing privilege.
    pub fn findings(&self, config: &PostgresSinkConfig, server: &str) -> Vec<PostgresError> {
        let table = config.table.clone();
        let mut found = Vec::new();
        let missing: Vec<String> = config
            .columns
            .iter()
            .filter(|column| !self.columns.contains(column))
            .cloned()
            .collect();
        if !missing.is_empty() {
            found.push(PostgresError::MissingColumns {
                server: server.to_owned(),
                table: table.clone(),
                columns: missing,
            });
        }
        if !config.key.is_empty() {
            let covered = self.unique.iter().any(|index| {
                index.len() == config.key.len()
                    && index.iter().all(|column| config.key.contains(column))
            });
            if !covered {
                found.push(PostgresError::NoUniqueKey {
                    server: server.to_owned(),
                    table: table.clone(),
                    key: config.key.clone(),
                });
            }
        }
        let needed = [
            ("INSERT", !self.can_insert),
            ("UPDATE", !config.key.is_empty() && !self.can_update),
        ];
        for (privilege, lacking) in needed {
            if lacking {
                found.push(PostgresError::Privilege {
                    server: server.to_owned(),
                    privilege,
                    on: table.clone(),
                });
            }
        }
        found
    }
}

/// Whether the login may create a table in `table`'s schema (the first of the
/// search path when it names none).
pub(super) fn can_create(client: &mut Client, table: &TableName) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT coalesce(has_schema_privilege(coalesce($1::text, current_schema()::text), 'CREATE'), false)",
        &[&table.schema()],
    )?;
    Ok(row.get(0))
}

/// Creates the table if it is still missing, under an advisory lock so that workers
/// opening at once do not race each other's `CREATE`.
pub(super) fn create(
    client: &mut Client,
    config: &PostgresSinkConfig,
    table: &TableName,
) -> Result<(), postgres::Error> {
    let mut transaction = client.transaction()?;
    transaction.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("brigade create {}", table.plain())],
    )?;
    transaction.batch_execute(&create_table(config, table))?;
    transaction.commit()
}
