//! A daemon serving a real pipeline on 127.0.0.1 and a plain HTTP/1.1 client for it,
//! shared by the test binaries that talk to its endpoints (each uses part of it).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use brigade_daemon::{Config, Daemon, Ended, Outcome};

use crate::common::{endless, wait_for};

/// A daemon serving an endless pipeline on a free port, run on its own thread.
pub struct Served {
    pub addr: SocketAddr,
    stopper: brigade_daemon::Stopper,
    thread: JoinHandle<Outcome>,
}

impl Served {
    /// Serves with `config`, on 127.0.0.1 and a free port.
    pub fn start(config: Config) -> Self {
        let config = Config {
            metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..config
        };
        let daemon = Daemon::new(&config).unwrap();
        let addr = daemon.metrics_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let stopper = daemon.stopper();
        let running = endless();
        let thread = std::thread::spawn(move || daemon.run(running));
        Self {
            addr,
            stopper,
            thread,
        }
    }

    /// Stops the run and checks that it drained with nothing lost.
    pub fn stop(self) {
        wait_for("records admitted", || {
            self.value("brigade_records_admitted_total")
                .is_some_and(|n| n > 0.0)
        });
        self.stopper.stop();
        let outcome = self.thread.join().unwrap();
        assert_eq!(outcome.ended, Ended::Stopped);
        let report = outcome.report;
        assert!(report.admitted > 0);
        assert_eq!(report.admitted, report.completed + report.dead_lettered);
    }

    pub fn scrape(&self) -> String {
        let response = request(self.addr, "GET", "/metrics", None);
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            response
                .head
                .contains("Content-Type: text/plain; version=0.0.4"),
            "without an Accept header, the text format: {}",
            response.head
        );
        assert!(!response.body.contains("# EOF"));
        response.body
    }

    /// The value of one series (`name{labels}` exactly as exposed), if exposed.
    pub fn value(&self, series: &str) -> Option<f64> {
        value(&self.scrape(), series)
    }

    /// Waits until the first window is on the board, so stage names are known.
    pub fn wait_for_first_tick(&self) {
        wait_for("the first tick", || {
            self.value(r#"brigade_stage_workers_live{stage="work"}"#)
                .is_some()
        });
    }

    pub fn post(&self, path: &str) -> Response {
        request(self.addr, "POST", path, None)
    }
}

pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    /// The `"error"` of a JSON refusal, checking that it is one.
    pub fn error(&self) -> String {
        let body: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body));
        assert_eq!(body["ok"], false, "{body}");
        body["error"].as_str().unwrap().to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection; `form` is sent as a form body.
pub fn request(addr: SocketAddr, method: &str, path: &str, form: Option<&str>) -> Response {
    request_with(addr, method, path, "", form)
}

/// [`request`] with extra header lines (each ending in `\r\n`).
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    form: Option<&str>,
) -> Response {
    let body = form.unwrap_or("");
    let content_type = match form {
        Some(_) => "Content-Type: application/x-www-form-urlencoded\r\n",
        None => "",
    };
    send(
        addr,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\
             {content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// Sends `raw` on a fresh connection and reads the answer to the end.
pub fn send(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(raw).unwrap();
    read_response(stream)
}

/// Reads an answer from `stream` to the end of the connection.
pub fn read_response(mut stream: TcpStream) -> Response {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer head in {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

pub fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(rest.parse().unwrap())
    })
}
