//! The source's healthcheck, for `brigade validate` and before `brigade run`.

use std::path::Path;

use super::connect::{config, connect};
use super::query::Plan;
use super::PgSourceConfig;
use crate::Problem;

impl PgSourceConfig {
    /// Connects and has the server describe the query: the server must answer, the
    /// query be valid (the server's message if not), its columns convertible, the key
    /// among them and orderable, an integer with partitions. `base` is unused (no
    /// paths).
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        let _ = base;
        let problem = |message: String| {
            vec![Problem {
                part: "source".to_owned(),
                message,
            }]
        };
        let mut client = match config(&self.url).and_then(|config| connect(&config)) {
            Ok(client) => client,
            Err(error) => return problem(error.to_string()),
        };
        match Plan::describe(&mut client, self) {
            Ok(_) => Vec::new(),
            Err(error) => problem(error.to_string()),
        }
    }
}
