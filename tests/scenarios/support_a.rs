//! Helpers of scenarios 1, 2, 3, 5, 6, 7 and 8: a recording HTTP/1.1 proxy written in the
//! test (std only), put between the Broker and one or more TAMs. Each request is answered
//! by what a route decides for its number: forwarded to an upstream TAM (round-robin over
//! replicas, for instance), answered with an HTTP status, or cut (the connection closed
//! without an answer). Every request body and answer is recorded, so that a test can decode
//! exactly what crossed the wire.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::common::deployment::{Deployment, Spawned, spawn_until};

/// What the proxy does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Forward it to this TAM (same path) and relay its answer.
    Forward(SocketAddr),
    /// Answer this HTTP status with an empty body, without forwarding.
    Status(u16),
    /// Close the connection without an answer (after reading the request).
    Cut,
    /// Forward it to this TAM and relay its answer changed by the function (an attacker
    /// on the path).
    Rewrite(SocketAddr, fn(&[u8]) -> Vec<u8>),
    /// Answer 200 with this TEEP message, without forwarding (a scripted TAM).
    Reply(Vec<u8>),
}

/// One request and what the Broker got back.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request's body (empty for the session-opening POST).
    pub request: Vec<u8>,
    /// The request's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// What the proxy did.
    pub action: String,
    /// The status relayed or answered (none when cut).
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

/// The running proxy (its thread lives as long as the test process).
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port; `route(n)` decides request number `n` (from 0).
    pub fn start(route: impl Fn(usize) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let counter = Arc::new(Mutex::new(0_usize));
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, route, counter) = (
                    Arc::clone(&shared),
                    Arc::clone(&route),
                    Arc::clone(&counter),
                );
                std::thread::spawn(move || serve(stream, &*route, &counter, &log));
            }
        });
        Self { addr, log }
    }

    /// A proxy forwarding everything to `upstream` (a TAM URI `http://HOST:PORT/...`).
    pub fn forward(upstream: &str) -> Self {
        let to = host_port(upstream);
        Self::start(move |_| Action::Forward(to))
    }

    /// The TAM URI through the proxy (path `/tam`).
    pub fn uri(&self) -> String {
        format!("http://{}/tam", self.addr)
    }

    /// Everything recorded so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

/// A route that tests change as they go: queued actions are taken first (one per request),
/// then the default for every further request.
#[derive(Clone)]
pub struct Script(Arc<Mutex<(std::collections::VecDeque<Action>, Action)>>);

impl Script {
    /// Every request gets `default`.
    pub fn new(default: Action) -> Self {
        Self(Arc::new(Mutex::new((
            std::collections::VecDeque::new(),
            default,
        ))))
    }

    /// From now on: `queued` for the next requests, then `default`.
    pub fn set(&self, queued: Vec<Action>, default: Action) {
        *self.0.lock().unwrap() = (queued.into(), default);
    }

    /// A proxy following this script.
    pub fn proxy(&self) -> Proxy {
        let script = self.clone();
        Proxy::start(move |_| {
            let mut s = script.0.lock().unwrap();
            let default = s.1.clone();
            s.0.pop_front().unwrap_or(default)
        })
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
fn serve(stream: TcpStream, route: &Route, counter: &Mutex<usize>, log: &Mutex<Vec<Exchange>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some((start, headers, body)) = read_message(&mut reader) else {
        return;
    };
    let started = Instant::now();
    let n = {
        let mut c = counter.lock().unwrap();
        *c += 1;
        *c - 1
    };
    let action = route(n);
    let what = format!("{action:?}");
    let content_type = header(&headers, "content-type").map(str::to_owned);
    let (status, answer_type, response) = match action {
        Action::Cut => (None, None, Vec::new()),
        Action::Status(code) => (Some(code), None, Vec::new()),
        Action::Reply(message) => (Some(200), Some("application/teep+cbor".to_owned()), message),
        Action::Forward(to) | Action::Rewrite(to, _) => {
            match forward(to, &start, &headers, &body) {
                Some((code, ty, bytes)) => match action {
                    Action::Rewrite(_, change) if !bytes.is_empty() => {
                        (Some(code), ty, change(&bytes))
                    }
                    _ => (Some(code), ty, bytes),
                },
                None => (None, None, Vec::new()),
            }
        }
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

/// Sends the request to `to` on a new connection; its status, `Content-Type` and body
/// (`None` when the TAM is unreachable or cut the connection).
fn forward(
    to: SocketAddr,
    start: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<(u16, Option<String>, Vec<u8>)> {
    let mut upstream = TcpStream::connect(to).ok()?;
    let mut head = format!("{start}\r\nHost: {to}\r\nConnection: close\r\n");
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
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
    let mut headers = vec![
        ("content-length".to_owned(), body.len().to_string()),
        ("accept".to_owned(), "application/teep+cbor".to_owned()),
    ];
    if !body.is_empty() {
        headers.push((
            "content-type".to_owned(),
            "application/teep+cbor".to_owned(),
        ));
    }
    let (code, _, answer) = forward(to, &format!("POST {path} HTTP/1.1"), &headers, body)
        .unwrap_or_else(|| panic!("no answer from {uri}"));
    (code, answer)
}

/// `teep inspect --json` of a captured body (written to `name` in `dir`).
pub fn inspect(dir: &std::path::Path, name: &str, body: &[u8]) -> serde_json::Value {
    std::fs::write(dir.join(name), body).unwrap();
    let out = crate::common::run(&["inspect", "--json", name], dir);
    serde_json::from_str(&out).unwrap()
}

/// The TEEP message type (`query-request`, `update`, ...) of a captured COSE body.
pub fn message_type(dir: &std::path::Path, body: &[u8]) -> String {
    let v = inspect(dir, "message.cbor", body);
    v["payload"]["type"].as_str().unwrap().to_owned()
}

/// Another `teep tam serve` beside a [`Deployment`]'s: in the deployment's working directory,
/// with its own data directory `name`, the same Verifier policy (`policy.json`, endorsing the
/// device) when asked for.
pub struct OtherTam {
    /// Its TEEP/HTTP URI.
    pub uri: String,
    /// Its admin API.
    pub admin_url: String,
    /// Its data directory.
    pub data: String,
    /// The process.
    pub process: Spawned,
}

impl OtherTam {
    /// Starts it; `extra` options are added (`--database`, `--verifier` ...); with
    /// `in_process_verifier` the deployment's `policy.json` is its Verifier's policy.
    pub fn start(d: &Deployment, name: &str, in_process_verifier: bool, extra: &[&str]) -> Self {
        Self::start_on(d, "127.0.0.1:0", name, in_process_verifier, extra)
    }

    /// [`OtherTam::start`] with its TEEP/HTTP server on `listen`.
    pub fn start_on(
        d: &Deployment,
        listen: &str,
        name: &str,
        in_process_verifier: bool,
        extra: &[&str],
    ) -> Self {
        let data = d.work().join(name).to_str().unwrap().to_owned();
        let mut args = vec![
            "tam",
            "serve",
            "--listen",
            listen,
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            &data,
            "--rate",
            "1000",
            "--burst",
            "1000",
        ];
        if in_process_verifier {
            args.extend(["--verifier-policy", "policy.json"]);
        }
        args.extend(extra);
        // `listening on http://...` or, with --tls-cert, `https://...`.
        let process = spawn_until(&args, d.work(), "listening on http", &d.log(name));
        Self {
            uri: process.after("listening on ").to_owned(),
            admin_url: process.after("admin API on ").to_owned(),
            data,
            process,
        }
    }

    /// Registers the deployment's TC signer (`signer.key.pub`) at this TAM.
    pub fn with_signer(self, d: &Deployment) -> Self {
        self.admin(
            d,
            &[
                "signer",
                "add",
                "--name",
                "vendor",
                "--key",
                "signer.key.pub",
            ],
        );
        self
    }

    /// `teep tam ARGS` against its admin API; must succeed.
    pub fn admin(&self, d: &Deployment, args: &[&str]) -> String {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &self.admin_url, "--data-dir", &self.data]);
        d.run(&all)
    }

    /// Its record of the deployment's device: each installed manifest with its sequence.
    pub fn installed(&self, d: &Deployment) -> Vec<(String, u64)> {
        installed_of(&self.admin(d, &["devices", "--json"]), &d.device_id)
    }
}

/// The installed manifests of `device` in a `teep tam devices --json` listing (empty when the
/// TAM does not know the device).
pub fn installed_of(devices_json: &str, device: &str) -> Vec<(String, u64)> {
    let devices: serde_json::Value = serde_json::from_str(devices_json).unwrap();
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == device)
        .map(|r| {
            r["installed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `teep tee serve` for the deployment's device, trusting the TAM keys of
/// `tam_data_dirs` and the TC signer, contacting `tams` (the first is the default), with
/// `extra` options.
pub fn start_tee_with(
    d: &Deployment,
    tam_data_dirs: &[&str],
    tams: &[&str],
    extra: &[&str],
) -> Spawned {
    start_tee_at(d, (&d.tee_dir, &d.socket), tam_data_dirs, tams, extra)
}

/// [`start_tee_with`] for another TEE of the device: its state directory and socket.
pub fn start_tee_at(
    d: &Deployment,
    (tee_dir, socket): (&str, &str),
    tam_data_dirs: &[&str],
    tams: &[&str],
    extra: &[&str],
) -> Spawned {
    let keys: Vec<String> = tam_data_dirs
        .iter()
        .map(|dir| format!("{dir}/tam-esp256.pub.pem"))
        .collect();
    let mut args = vec![
        "tee",
        "serve",
        "--state-dir",
        tee_dir,
        "--socket",
        socket,
        "--trust-signer",
        "signer.key.pub",
    ];
    for key in &keys {
        args.extend(["--trust-tam", key]);
    }
    for tam in tams {
        args.extend(["--tam", tam]);
    }
    args.extend(extra);
    spawn_until(&args, d.work(), "tee socket: ", &d.log("tee"))
}

/// Writes a private CA (`NAME-ca.pem`) and a TLS certificate by it for `127.0.0.1`
/// (`NAME.crt`, key `NAME.key`) in `dir`: what `teep tam serve --tls-cert --tls-key` and
/// `teep device run --tam-ca` take.
pub fn tls_files(dir: &std::path::Path, name: &str) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca_cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), leaf.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// A PostgreSQL database of its own on the server of `TEEP_TEST_DATABASE_URL` (`None`, with a
/// note printed, when it is not set); dropped (its connections ended) on drop.
pub struct PgDatabase {
    /// The server's URL (the database the variable names).
    base: String,
    /// This database's name.
    name: String,
    /// Its URL (what `teep tam serve --database` takes).
    pub url: String,
}

impl PgDatabase {
    /// Creates `teep_PREFIX_PID_NANOS`.
    pub fn create(prefix: &str) -> Option<Self> {
        let Ok(base) = std::env::var("TEEP_TEST_DATABASE_URL") else {
            println!("skipped: TEEP_TEST_DATABASE_URL not set (PostgreSQL)");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("teep_{prefix}_{}_{nanos}", std::process::id());
        pg_execute(&base, &format!("CREATE DATABASE {name}"));
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Some(Self { base, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        pg_execute(
            &self.base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the database at `url`.
fn pg_execute(url: &str, statement: &str) {
    use sqlx::Connection as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        });
}

/// `teep verifier serve` with the deployment's `policy.json`, a new signing key
/// (`verifier.key`, public half `verifier.key.pub`) and one relying party `tam` with `token`;
/// the process and its URL.
pub fn start_verifier(d: &Deployment, token: &str) -> (Spawned, String) {
    d.run(&["keys", "generate", "--out", "verifier.key"]);
    std::fs::write(d.work().join("verifier.tokens"), format!("tam {token}\n")).unwrap();
    let verifier = spawn_until(
        &[
            "verifier",
            "serve",
            "--policy",
            "policy.json",
            "--key",
            "verifier.key",
            "--tokens",
            "verifier.tokens",
            "--listen",
            "127.0.0.1:0",
        ],
        d.work(),
        "listening on http://",
        &d.log("verifier"),
    );
    let url = format!("http://{}", verifier.after("listening on http://"));
    (verifier, url)
}

/// Waits (up to a minute: the machine may be loaded) until `done` holds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
