//! The HTTP sink's healthcheck: the configuration describes a request, and the
//! endpoint's host answers. It sends no document.

use std::time::Duration;

use super::writer::{agent, validate};
use super::HttpSinkConfig;
use crate::Problem;

/// The longest the check waits for the endpoint.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl HttpSinkConfig {
    /// What stops this sink from starting: a URL that is not an `http://` URL, a bad
    /// header, `bulk` without `index`, or a host that does not answer a `GET` of its
    /// root (refused, unknown, timed out; any status is an answer). Part `sink`.
    pub fn check(&self) -> Vec<Problem> {
        match self.find_problem() {
            Ok(()) => Vec::new(),
            Err(message) => vec![Problem {
                part: "sink".into(),
                message,
            }],
        }
    }

    fn find_problem(&self) -> Result<(), String> {
        let uri = validate(self).map_err(|error| error.to_string())?;
        let authority = uri.authority().map_or("", |authority| authority.as_str());
        let root = format!("http://{authority}/");
        let mut quick = self.clone();
        quick.timeout = Some(crate::units::Span(self.timeout().min(CHECK_TIMEOUT)));
        let mut request = agent(&quick).get(&root);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match request.call() {
            Ok(_) => Ok(()),
            Err(source) => Err(format!(
                "the endpoint {} does not answer: GET {root}: {source}",
                self.url
            )),
        }
    }
}
