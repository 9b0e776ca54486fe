//! Clients that misbehave get a 4xx, and never stall the metrics or the pipeline:
//! huge bodies, clients that send nothing or dribble, oversized heads, chunked
//! bodies. Real connections to a real daemon on 127.0.0.1.

mod common;
mod served;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use brigade_daemon::Config;
use common::wait_for;
use served::{read_response, request, send, value, Served};

/// True while the server has neither answered nor closed `stream`.
fn still_waiting(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let waiting = matches!(
        (&*stream).read(&mut byte),
        Err(e) if e.kind() == ErrorKind::WouldBlock
    );
    stream.set_nonblocking(false).unwrap();
    waiting
}

#[test]
fn a_huge_body_is_refused_unread_with_413() {
    let served = Served::start(Config::default());
    served.wait_for_first_tick();
    // A terabyte announced, 64 KiB of it sent: refused from the head alone.
    let mut raw = b"POST /control/pause HTTP/1.1\r\nHost: test\r\n\
        Content-Type: application/x-www-form-urlencoded\r\n\
        Content-Length: 1000000000000\r\n\r\n"
        .to_vec();
    raw.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let response = send(served.addr, &raw);
    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(
        response.error(),
        "the body is 1000000000000 bytes; the most taken is 4096"
    );
    // One byte over the cap, announced with 100-continue as curl does: refused
    // before the client sends it.
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .write_all(
            b"POST /control/pause HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n\
              Content-Length: 4097\r\n\r\n",
        )
        .unwrap();
    assert_eq!(read_response(stream).status, 413);
    // The cap itself is taken (as a form body, whose parameters are then checked).
    let form = format!("x={}", "a".repeat(4094));
    let response = request(served.addr, "POST", "/control/pause", Some(&form));
    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(response.error(), r#"unknown parameter "x""#);
    assert_eq!(
        served.value("brigade_controller_paused"),
        Some(0.0),
        "nothing refused was applied"
    );
    served.stop();
}

#[test]
fn silent_and_dribbling_clients_hold_only_their_own_connection() {
    let served = Served::start(Config::default());
    served.wait_for_first_tick();
    // One connects and says nothing; one sends half a head; one sends a head and
    // part of the body it announced.
    let silent = TcpStream::connect(served.addr).unwrap();
    let mut half_head = TcpStream::connect(served.addr).unwrap();
    half_head.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    let mut half_body = TcpStream::connect(served.addr).unwrap();
    half_body
        .write_all(
            b"POST /control/pause HTTP/1.1\r\nHost: test\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 9\r\n\r\nx=",
        )
        .unwrap();

    // Scrapes are answered meanwhile, and the pipeline goes on.
    let completed = "brigade_records_completed_total";
    let before = served.value(completed).unwrap();
    wait_for("records to go on completing", || {
        served.value(completed).unwrap() > before
    });
    for stream in [&silent, &half_head, &half_body] {
        assert!(
            still_waiting(stream),
            "the slow clients were still sending while the scrapes were answered"
        );
    }

    // The dribbler finishes and is answered: the rest of its body, a parameter the
    // pause does not take.
    half_body.write_all(b"1234567").unwrap();
    let response = read_response(half_body);
    assert_eq!(response.status, 400, "{}", response.body);
    assert_eq!(response.error(), r#"unknown parameter "x""#);

    // The silent client is given up after the request deadline (10 s), with a 408.
    let response = read_response(silent);
    assert_eq!(response.status, 408, "{}", response.body);
    assert_eq!(
        response.error(),
        "the request did not arrive whole within 10 s"
    );
    drop(half_head);
    assert!(value(&served.scrape(), completed).is_some());
    served.stop();
}

#[test]
fn malformed_heads_get_a_4xx_naming_what_is_wrong() {
    let served = Served::start(Config::default());
    let long = format!(
        "GET /metrics HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(9000)
    );
    for (raw, status, message) in [
        (
            long.as_str(),
            431,
            "the request head is longer than 8192 bytes",
        ),
        (
            "GET /metrics\r\n\r\n",
            400,
            r#"malformed request line "GET /metrics""#,
        ),
        (
            "GET metrics HTTP/1.1\r\n\r\n",
            400,
            r#"malformed request line "GET metrics HTTP/1.1""#,
        ),
        (
            "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            400,
            r#"malformed header line "no colon here""#,
        ),
        (
            "GET /metrics HTTP/3\r\n\r\n",
            505,
            "HTTP/3 is not served: HTTP/1.0 and HTTP/1.1 are",
        ),
        (
            "POST /control/pause HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            400,
            r#"Content-Length: expected a number of bytes, got "ten""#,
        ),
        (
            "POST /control/pause HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            411,
            "send the body with a Content-Length, not a Transfer-Encoding",
        ),
    ] {
        let response = send(served.addr, raw.as_bytes());
        assert_eq!(response.status, status, "{raw:.60}: {}", response.body);
        assert_eq!(response.error(), message, "{raw:.60}");
    }
    // HTTP/1.0 and HEAD are served.
    let head = send(served.addr, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    served.stop();
}

#[test]
fn past_64_connections_the_next_is_refused_at_once_and_served_again_later() {
    let served = Served::start(Config::default());
    // Connections are accepted in the order they arrive: the 65th finds 64 open.
    let silent: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(served.addr).unwrap())
        .collect();
    let response = send(served.addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(
        response.error(),
        "the daemon is serving 64 connections already; retry shortly"
    );
    drop(silent);
    wait_for("a connection's slot to come back", || {
        send(served.addr, b"GET /metrics HTTP/1.1\r\n\r\n").status == 200
    });
    served.stop();
}
