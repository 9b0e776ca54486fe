//! The HTTP/1.1 server under the daemon's endpoints, built to stay up whatever a
//! client does. Each connection has a thread of its own (at most
//! [`MAX_CONNECTIONS`] at once; more get 503 from one thread of their own), so a
//! slow or silent client holds only its own; a request must arrive whole within
//! [`REQUEST_DEADLINE`], with a head of at most [`MAX_HEAD`] bytes and a body of at
//! most [`MAX_BODY`] bytes, or it is refused (408, 431, 413) without reading the
//! rest. One request per connection: every answer says `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers), bytes.
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Longest request body, bytes: the control endpoints take a few short parameters.
pub(crate) const MAX_BODY: usize = 4 * 1024;
/// How long a client has to send its whole request.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Most connections served at once; more are answered 503 at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long writing an answer may take before the client is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After an early answer (413, 408), how much of what the client still sends is read
/// and dropped, and for how long, so that closing does not reset the connection
/// before the client has read the answer.
const LINGER: (u64, Duration) = (1 << 20, Duration::from_secs(2));

/// A request that arrived whole.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, … as sent.
    pub method: String,
    /// The path, before any `?`.
    pub path: String,
    /// What follows the `?`, undecoded.
    pub query: String,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, content type, extra headers, body.
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// `{"ok":false,"error":MESSAGE}` with `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(
            status,
            serde_json::json!({"ok": false, "error": message.into()}),
        )
    }
}

/// What answers requests; called on the connection's thread.
pub(crate) type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The accepting thread and the way to stop it.
pub(crate) struct Server {
    stopping: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: JoinHandle<()>,
}

/// Serves `listener` with `handler` until [`Server::stop`].
pub(crate) fn serve(listener: TcpListener, handler: Arc<Handler>) -> io::Result<Server> {
    let addr = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let thread = {
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("brigade:daemon-http".into())
            .spawn(move || accept(&listener, &handler, &stopping))?
    };
    Ok(Server {
        stopping,
        addr,
        thread,
    })
}

impl Server {
    /// Stops accepting and waits for the accepting thread. Connections being served
    /// finish by themselves, within their deadlines.
    pub fn stop(self) {
        self.stopping.store(true, SeqCst);
        // Wakes the thread blocked in accept(); it sees the flag and ends.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&wake, Duration::from_secs(5)) {
            Ok(_) => {
                if self.thread.join().is_err() {
                    tracing::error!("the daemon's HTTP thread panicked");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot wake the HTTP thread to stop it; leaving it");
            }
        }
    }
}

/// Counts a connection's thread while it lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

fn accept(listener: &TcpListener, handler: &Arc<Handler>, stopping: &AtomicBool) {
    let open = Arc::new(AtomicUsize::new(0));
    // Connections past the limit go to one thread that answers 503 and lingers a
    // moment on each; past as many again, they are closed unanswered.
    let (busy, refused) = crossbeam_channel::bounded::<TcpStream>(MAX_CONNECTIONS);
    let refuser = std::thread::Builder::new()
        .name("brigade:daemon-http-busy".into())
        .spawn(move || refused.iter().for_each(refuse_busy));
    if let Err(error) = &refuser {
        tracing::warn!(%error, "metrics server: cannot start the thread that answers 503");
    }
    for stream in listener.incoming() {
        if stopping.load(SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(%error, "metrics server: cannot accept a connection");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.fetch_add(1, SeqCst) >= MAX_CONNECTIONS {
            drop(Slot(open.clone()));
            // Full (or no refuser): the stream is dropped, closing the connection.
            let _ = busy.try_send(stream);
            continue;
        }
        let slot = Slot(open.clone());
        let handler = handler.clone();
        let spawned = std::thread::Builder::new()
            .name("brigade:daemon-http-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_connection(stream, &*handler);
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "metrics server: cannot start a connection's thread");
        }
    }
}

/// Answers 503, then reads and drops what the client sends for a moment (closing on
/// unread data would reset the connection before the client reads the answer).
fn refuse_busy(stream: TcpStream) {
    let reply = Reply::error(
        503,
        format!("the daemon is serving {MAX_CONNECTIONS} connections already; retry shortly"),
    );
    let moment = Some(Duration::from_millis(200));
    if stream.set_write_timeout(moment).is_err() || write_reply(&stream, &reply, false).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_read_timeout(moment).is_ok() {
        let _ = io::copy(&mut (&stream).take(64 * 1024), &mut io::sink());
    }
}

/// Why a request could not be read.
enum Refusal {
    /// Answer with this and close.
    Reply(Reply),
    /// The client went away, or sent nothing before the deadline: close quietly.
    Gone,
}

fn serve_connection(stream: TcpStream, handler: &Handler) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let (reply, head_only, early) = match read_request(&stream, deadline) {
        Ok(request) => {
            let reply = handler(&request);
            (reply, request.method == "HEAD", false)
        }
        Err(Refusal::Reply(reply)) => (reply, false, true),
        Err(Refusal::Gone) => return,
    };
    if let Err(error) = write_reply(&stream, &reply, head_only) {
        tracing::debug!(%error, "metrics server: the client left before the answer");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    if early {
        linger(&stream);
    }
}

/// Reads and drops what the client still sends, within [`LINGER`]'s bounds.
fn linger(stream: &TcpStream) {
    let (bytes, time) = LINGER;
    if stream.set_read_timeout(Some(time)).is_ok() {
        let _ = io::copy(&mut stream.take(bytes), &mut io::sink());
    }
}

/// Reads one request: head, then body, all before `deadline`.
fn read_request(stream: &TcpStream, deadline: Instant) -> Result<Request, Refusal> {
    let mut buffer = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        if buffer.len() >= MAX_HEAD {
            return Err(Refusal::Reply(Reply::error(
                431,
                format!("the request head is longer than {MAX_HEAD} bytes"),
            )));
        }
        if read_some(stream, &mut buffer, MAX_HEAD + 4, deadline)? == 0 {
            return Err(Refusal::Gone);
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|_| bad("the request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let (method, target) = request_line(lines.next().unwrap_or(""))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| is_token(name))
            .ok_or_else(|| bad(format!("malformed header line {line:?}")))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method,
        path: String::new(),
        query: String::new(),
        headers,
        body: Vec::new(),
    };
    (request.path, request.query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    };
    let length = body_length(&request)?;
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        write_all(stream, b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|_| Refusal::Gone)?;
    }
    let mut body = buffer.split_off(head_end + 4);
    body.truncate(length);
    while body.len() < length {
        if read_some(stream, &mut body, length, deadline)? == 0 {
            return Err(Refusal::Gone);
        }
    }
    request.body = body;
    Ok(request)
}

/// The body's length from `Content-Length`, refused past [`MAX_BODY`]; chunked
/// bodies are refused (nothing here needs them).
fn body_length(request: &Request) -> Result<usize, Refusal> {
    if request.header("transfer-encoding").is_some() {
        return Err(Refusal::Reply(Reply::error(
            411,
            "send the body with a Content-Length, not a Transfer-Encoding",
        )));
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|(name, _)| name == "content-length");
    let Some((_, text)) = lengths.next() else {
        return Ok(0);
    };
    if lengths.any(|(_, other)| other != text) {
        return Err(bad("conflicting Content-Length headers"));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "Content-Length: expected a number of bytes, got {text:?}"
        )));
    }
    match text.parse::<usize>() {
        Ok(length) if length <= MAX_BODY => Ok(length),
        _ => Err(Refusal::Reply(Reply::error(
            413,
            format!("the body is {text} bytes; the most taken is {MAX_BODY}"),
        ))),
    }
}

/// Method and request target from `METHOD TARGET HTTP/1.x`.
fn request_line(line: &str) -> Result<(String, String), Refusal> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad(format!("malformed request line {line:?}")));
    };
    if !is_token(method) || !target.starts_with('/') {
        return Err(bad(format!("malformed request line {line:?}")));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Refusal::Reply(Reply::error(
            505,
            format!("{version} is not served: HTTP/1.0 and HTTP/1.1 are"),
        )));
    }
    Ok((method.to_owned(), target.to_owned()))
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::Reply(Reply::error(400, message))
}

/// An HTTP token (a method, a header name): visible ASCII but separators.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads onto `into`, which it fills to `up_to` bytes at most, waiting no later than
/// `deadline`; 0 at the end of the stream.
fn read_some(
    mut stream: &TcpStream,
    into: &mut Vec<u8>,
    up_to: usize,
    deadline: Instant,
) -> Result<usize, Refusal> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timeout());
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(|_| Refusal::Gone)?;
    let mut chunk = [0u8; 4096];
    let want = up_to.saturating_sub(into.len()).min(chunk.len());
    loop {
        return match stream.read(&mut chunk[..want]) {
            Ok(n) => {
                into.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(timeout())
            }
            Err(_) => Err(Refusal::Gone),
        };
    }
}

fn timeout() -> Refusal {
    Refusal::Reply(Reply::error(
        408,
        format!(
            "the request did not arrive whole within {} s",
            REQUEST_DEADLINE.as_secs()
        ),
    ))
}

fn write_reply(stream: &TcpStream, reply: &Reply, head_only: bool) -> io::Result<()> {
    let mut text = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    if !head_only {
        text.push_str(&reply.body);
    }
    write_all(stream, text.as_bytes())
}

fn write_all(mut stream: &TcpStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// The reason phrase of the statuses this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: text
                .lines()
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.to_ascii_lowercase(), v.trim().to_owned())
                })
                .collect(),
            body: Vec::new(),
        }
    }

    fn status(result: Result<usize, Refusal>) -> Result<usize, u16> {
        result.map_err(|r| match r {
            Refusal::Reply(reply) => reply.status,
            Refusal::Gone => 0,
        })
    }

    #[test]
    fn body_lengths_are_read_strictly_and_capped() {
        assert_eq!(status(body_length(&head(""))), Ok(0));
        assert_eq!(status(body_length(&head("Content-Length: 4096"))), Ok(4096));
        assert_eq!(status(body_length(&head("Content-Length: 4097"))), Err(413));
        let huge = "Content-Length: 99999999999999999999999999";
        assert_eq!(status(body_length(&head(huge))), Err(413));
        assert_eq!(status(body_length(&head("Content-Length: -1"))), Err(400));
        assert_eq!(status(body_length(&head("Content-Length: 1e3"))), Err(400));
        let twice = "Content-Length: 1\nContent-Length: 2";
        assert_eq!(status(body_length(&head(twice))), Err(400));
        let chunked = "Transfer-Encoding: chunked";
        assert_eq!(status(body_length(&head(chunked))), Err(411));
    }

    #[test]
    fn request_lines_are_checked() {
        assert!(request_line("GET /metrics HTTP/1.1").is_ok());
        assert!(request_line("GET /metrics HTTP/1.0").is_ok());
        for line in ["GET", "GET  /metrics HTTP/1.1", "GET metrics HTTP/1.1", ""] {
            assert!(
                matches!(request_line(line), Err(Refusal::Reply(r)) if r.status == 400),
                "{line:?}"
            );
        }
        assert!(matches!(
            request_line("GET / HTTP/2.0"),
            Err(Refusal::Reply(r)) if r.status == 505
        ));
    }
}
