//! The testkit's bulk endpoint on its own, for trying the `http` sink by hand or in an
//! experiment: `cargo run --example bulk_endpoint -- --knee 8 --limit 32`.
//!
//! It prints its URL (POST `_bulk` to `URL/_bulk`, JSON lines to `URL/`), serves until
//! its standard input closes (Ctrl-D, or the driving script closing the pipe), then
//! prints what it received as one JSON line. Flags (each optional): `--knee N`
//! (requests served at full speed), `--limit N` (requests in progress past which it
//! answers 429), `--per-doc-us N` and `--per-request-us N` (the cost of a document and
//! of a request at full speed), `--fail-share F` (documents refused with 400),
//! `--retry-after S` (the 429's `Retry-After`, seconds), `--no-item-throttling`.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use brigade_testkit::bulk::{BulkServer, Capacity};

fn main() -> ExitCode {
    let capacity = match capacity(std::env::args().skip(1)) {
        Ok(capacity) => capacity,
        Err(message) => {
            eprintln!("bulk_endpoint: {message}");
            return ExitCode::from(2);
        }
    };
    let server = match BulkServer::start(capacity.clone()) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("bulk_endpoint: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());
    eprintln!("bulk_endpoint: serving {capacity:?}; close standard input to stop");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let seen = server.received();
    println!(
        "{{\"requests\":{},\"throttled\":{},\"items_throttled\":{},\"items_rejected\":{},\
         \"indexed\":{},\"most_concurrent\":{}}}",
        seen.requests,
        seen.throttled,
        seen.items_throttled,
        seen.items_rejected,
        seen.indexed,
        seen.most_concurrent
    );
    ExitCode::SUCCESS
}

/// The capacity the flags describe, from the testkit's default.
fn capacity(mut args: impl Iterator<Item = String>) -> Result<Capacity, String> {
    let mut capacity = Capacity::default();
    while let Some(flag) = args.next() {
        if flag == "--no-item-throttling" {
            capacity.item_throttling = false;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |value: &str| -> Result<u64, String> {
            value
                .parse()
                .map_err(|_| format!("{flag}: expected a whole number, got {value:?}"))
        };
        match flag.as_str() {
            "--knee" => capacity.knee = number(&value)? as usize,
            "--limit" => capacity.limit = number(&value)? as usize,
            "--per-doc-us" => capacity.per_doc = Duration::from_micros(number(&value)?),
            "--per-request-us" => capacity.per_request = Duration::from_micros(number(&value)?),
            "--retry-after" => capacity.retry_after = Some(number(&value)?),
            "--fail-share" => {
                capacity.fail_share = value
                    .parse()
                    .map_err(|_| format!("--fail-share: expected a number, got {value:?}"))?;
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(capacity)
}
