//! The scenarios' TEEP/HTTP proxy, written in the test (std only) and put between the
//! Broker and one or more TAMs. Each POST is handled by an [`Action`]: queued actions first,
//! one per request, then what the proxy's route decides for the request's number. It
//! forwards (to its upstream TAM, or to another: round-robin over replicas, for instance),
//! answers in the TAM's place (an HTTP status, or a TEEP message: a scripted or compromised
//! TAM), cuts the connection, or changes the bytes on their way (an attacker on the path, a
//! compromised Broker replaying or rolling back messages). Every exchange is recorded, so
//! that a test can decode exactly what crossed the wire.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What [`Action::RewriteRequest`] and [`Action::RewriteAnswer`] do to the bytes.
pub type Rewriter = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// What the proxy does with one request.
#[derive(Clone)]
pub enum Action {
    /// Forward it to the proxy's upstream TAM (same path) and relay its answer.
    Forward,
    /// Forward it to this TAM instead, and relay its answer.
    ForwardTo(SocketAddr),
    /// Answer this HTTP status with an empty body, without forwarding.
    Status(u16),
    /// Close the connection without an answer (after reading the request).
    Cut,
    /// Answer this TEEP message (200; an empty one: 204, nothing more) without forwarding.
    Reply(Vec<u8>),
    /// Send the upstream what this makes of the Broker's bytes, and relay its answer.
    RewriteRequest(Rewriter),
    /// Forward it, and relay the upstream's answer changed by this.
    RewriteAnswer(Rewriter),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forward => f.write_str("Forward"),
            Self::ForwardTo(to) => write!(f, "ForwardTo({to})"),
            Self::Status(code) => write!(f, "Status({code})"),
            Self::Cut => f.write_str("Cut"),
            Self::Reply(bytes) => write!(f, "Reply({} bytes)", bytes.len()),
            Self::RewriteRequest(_) => f.write_str("RewriteRequest"),
            Self::RewriteAnswer(_) => f.write_str("RewriteAnswer"),
        }
    }
}

/// One request and what the Broker got back.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The Broker's body (empty for the session-opening POST).
    pub request: Vec<u8>,
    /// The request's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// What the proxy did ([`Action`]'s `Debug`).
    pub action: String,
    /// The status relayed or answered (none when cut or the upstream did not answer).
    pub status: Option<u16>,
    /// The answer's body.
    pub response: Vec<u8>,
    /// When the request had been read, and when its answer was ready (recorded before it
    /// is sent, so that a test never misses the last exchange).
    pub started: Instant,
    /// See `started`.
    pub ended: Instant,
}

type Route = dyn Fn(usize) -> Action + Send + Sync;

/// How the next requests are handled.
struct Routing {
    /// Where [`Action::Forward`] goes.
    upstream: Option<SocketAddr>,
    /// Taken first, one per request.
    queued: VecDeque<Action>,
    /// Decides request number `n` (from 0) when nothing is queued.
    route: Arc<Route>,
    /// Requests so far.
    count: usize,
}

impl Routing {
    fn next(&mut self) -> (Action, Option<SocketAddr>) {
        let n = self.count;
        self.count += 1;
        let action = self.queued.pop_front().unwrap_or_else(|| (self.route)(n));
        (action, self.upstream)
    }
}

/// The running proxy (its thread lives as long as the test process).
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    routing: Arc<Mutex<Routing>>,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port, forwarding to `upstream` (a TAM URI
    /// `http://HOST:PORT/...`) when told to; `route(n)` decides request number `n` (from 0)
    /// when nothing is queued.
    pub fn start(
        upstream: Option<&str>,
        route: impl Fn(usize) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let routing = Arc::new(Mutex::new(Routing {
            upstream: upstream.map(host_port),
            queued: VecDeque::new(),
            route: Arc::new(route),
            count: 0,
        }));
        let (shared_log, shared_routing) = (Arc::clone(&log), Arc::clone(&routing));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, routing) = (Arc::clone(&shared_log), Arc::clone(&shared_routing));
                std::thread::spawn(move || serve(stream, &routing, &log));
            }
        });
        Self { addr, routing, log }
    }

    /// A proxy forwarding everything to `upstream` until told otherwise.
    pub fn forward(upstream: &str) -> Self {
        Self::start(Some(upstream), |_| Action::Forward)
    }

    /// A proxy with no upstream yet, answering every request with `action`.
    pub fn scripted(action: Action) -> Self {
        Self::start(None, move |_| action.clone())
    }

    /// The next requests are handled by `actions`, in order (then as before).
    pub fn plan(&self, actions: impl IntoIterator<Item = Action>) {
        self.routing.lock().unwrap().queued.extend(actions);
    }

    /// From now on: `queued` for the next requests, then `action` for every further one.
    pub fn set(&self, queued: Vec<Action>, action: Action) {
        let mut routing = self.routing.lock().unwrap();
        routing.queued = queued.into();
        routing.route = Arc::new(move |_| action.clone());
    }

    /// [`Action::Forward`] goes to the TAM at `upstream` (its URI) from now on.
    pub fn set_upstream(&self, upstream: &str) {
        self.routing.lock().unwrap().upstream = Some(host_port(upstream));
    }

    /// The TAM URI through the proxy (path `/tam`).
    pub fn uri(&self) -> String {
        format!("http://{}/tam", self.addr)
    }

    /// Everything recorded so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// Forgets the exchanges recorded so far.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Waits until a TEEP session through the proxy has ended: its last POST got an empty
    /// answer (the TAM has nothing more to send).
    pub fn wait_session_end(&self) {
        crate::processes::wait_for("the session through the proxy to end", || {
            self.exchanges()
                .last()
                .is_some_and(|x| x.response.is_empty())
        });
    }
}

/// `HOST:PORT` of an `http://HOST:PORT/...` URI.
pub fn host_port(uri: &str) -> SocketAddr {
    let rest = uri.strip_prefix("http://").unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// An HTTP/1.1 message: its start line, its headers (lower-case names) and its body.
type Message = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 message head and body (by `Content-Length`; the TAM never chunks):
/// the start line, the headers (lower-case names) and the body. `None` at EOF.
fn read_message(reader: &mut impl BufRead) -> Option<Message> {
    let mut start = String::new();
    if reader.read_line(&mut start).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    assert!(
        !headers.iter().any(|(n, _)| n == "transfer-encoding"),
        "chunked bodies are not relayed: {headers:?}"
    );
    let length = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((start.trim_end().to_owned(), headers, body))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find_map(|(n, v)| (n == name).then_some(v.as_str()))
}

/// Serves one client connection: one request, one answer, then the connection is closed.
fn serve(stream: TcpStream, routing: &Mutex<Routing>, log: &Mutex<Vec<Exchange>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some((start, headers, body)) = read_message(&mut reader) else {
        return;
    };
    let started = Instant::now();
    let (action, upstream) = routing.lock().unwrap().next();
    let what = format!("{action:?}");
    let content_type = header(&headers, "content-type").map(str::to_owned);
    let relay = |to: Option<SocketAddr>, body: &[u8]| {
        to.and_then(|to| forward(to, &start, &headers, body))
            .map_or((None, None, Vec::new()), |(code, ty, bytes)| {
                (Some(code), ty, bytes)
            })
    };
    let (status, answer_type, response) = match &action {
        Action::Cut => (None, None, Vec::new()),
        Action::Status(code) => (Some(*code), None, Vec::new()),
        Action::Reply(message) if message.is_empty() => (Some(204), None, Vec::new()),
        Action::Reply(message) => (
            Some(200),
            Some("application/teep+cbor".to_owned()),
            message.clone(),
        ),
        Action::Forward => relay(upstream, &body),
        Action::ForwardTo(to) => relay(Some(*to), &body),
        Action::RewriteRequest(change) => relay(upstream, &change(&body)),
        Action::RewriteAnswer(change) => match relay(upstream, &body) {
            (status, ty, bytes) if !bytes.is_empty() => (status, ty, change(&bytes)),
            relayed => relayed,
        },
    };
    // Recorded before the answer is sent, so that a test never misses the last exchange.
    log.lock().unwrap().push(Exchange {
        request: body,
        content_type,
        action: what,
        status,
        response: response.clone(),
        started,
        ended: Instant::now(),
    });
    let mut stream = stream;
    if let Some(code) = status {
        let mut head = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n",
            response.len()
        );
        if let Some(ty) = answer_type {
            head.push_str(&format!("Content-Type: {ty}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&response);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Sends the request to `to` on a new connection (with `body`, which may differ from what
/// the Broker sent: its length and, for a message in place of an empty POST, its type are
/// set); its status, `Content-Type` and body (`None` when the TAM is unreachable or cut the
/// connection).
fn forward(
    to: SocketAddr,
    start: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<(u16, Option<String>, Vec<u8>)> {
    let mut upstream = TcpStream::connect(to).ok()?;
    let mut head = format!(
        "{start}\r\nHost: {to}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !body.is_empty() && header(headers, "content-type").is_none() {
        head.push_str("content-type: application/teep+cbor\r\n");
    }
    head.push_str("\r\n");
    upstream.write_all(head.as_bytes()).ok()?;
    upstream.write_all(body).ok()?;
    let mut reader = BufReader::new(upstream);
    let (status_line, headers, body) = read_message(&mut reader)?;
    let code = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        code,
        header(&headers, "content-type").map(str::to_owned),
        body,
    ))
}

/// POSTs `body` (as `application/teep+cbor`, or an empty POST) to the TAM URI `uri`
/// directly, as an attacker on the network would; the status and the answer's body.
pub fn post(uri: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let to = host_port(uri);
    let path = &uri["http://".len() + to.to_string().len()..];
    let headers = [("accept".to_owned(), "application/teep+cbor".to_owned())];
    let (code, _, answer) = forward(to, &format!("POST {path} HTTP/1.1"), &headers, body)
        .unwrap_or_else(|| panic!("no answer from {uri}"));
    (code, answer)
}
