//! Helpers of scenarios 15–22: a TEEP/HTTP proxy between the Broker and the TAM that, POST
//! by POST, forwards, answers in the TAM's place or sends the TAM other bytes (replays,
//! rolled-back or invalid messages, as a compromised Broker or network could), recording
//! every exchange; a further TAM process beside the deployment's; TEEP message decoding.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use teep_proto::{Message, Numbering, Unverified};

use crate::common::deployment::{Deployment, Spawned};

/// What the proxy does with one POST of the Broker.
#[derive(Clone)]
pub enum Plan {
    /// Pass it to the TAM and its answer back.
    Forward,
    /// Answer these bytes (a TEEP message; none: 204, the TAM has nothing more) without
    /// asking the TAM.
    Answer(Vec<u8>),
    /// Send the TAM what this makes of the Broker's bytes, and its answer back.
    Rewrite(Rewriter),
}

/// What [`Plan::Rewrite`] does to the Broker's bytes.
pub type Rewriter = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forward => f.write_str("Forward"),
            Self::Answer(b) => write!(f, "Answer({} bytes)", b.len()),
            Self::Rewrite(_) => f.write_str("Rewrite"),
        }
    }
}

/// One POST as the proxy saw it: what the Broker sent, what went back.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The Broker's body.
    pub request: Vec<u8>,
    /// The HTTP status returned to the Broker.
    pub status: u16,
    /// The body returned to the Broker.
    pub response: Vec<u8>,
}

#[derive(Clone)]
struct Shared {
    upstream: Arc<Mutex<String>>,
    plans: Arc<Mutex<VecDeque<Plan>>>,
    log: Arc<Mutex<Vec<Exchange>>>,
    client: reqwest::Client,
}

/// The proxy, serving on loopback until dropped.
pub struct Proxy {
    /// Its TEEP/HTTP URI (what the TEE is told is the TAM).
    pub uri: String,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

async fn relay(shared: &Shared, headers: &HeaderMap, body: Vec<u8>) -> (u16, Vec<u8>) {
    let upstream = shared.upstream.lock().unwrap().clone();
    let body_is_empty = body.is_empty();
    let mut request = shared.client.post(upstream).body(body);
    match headers.get(header::CONTENT_TYPE) {
        Some(ct) => request = request.header(header::CONTENT_TYPE, ct.as_bytes()),
        // A rewritten empty POST (the Broker's first) now carries a message.
        None if !body_is_empty => {
            request = request.header(header::CONTENT_TYPE, "application/teep+cbor");
        }
        None => {}
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.bytes().await.unwrap_or_default().to_vec())
        }
        Err(_) => (502, Vec::new()),
    }
}

async fn post(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let plan = shared
        .plans
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Plan::Forward);
    let (status, response) = match plan {
        Plan::Forward => relay(&shared, &headers, body.to_vec()).await,
        Plan::Answer(bytes) if bytes.is_empty() => (204, bytes),
        Plan::Answer(bytes) => (200, bytes),
        Plan::Rewrite(rewrite) => relay(&shared, &headers, rewrite(&body)).await,
    };
    shared.log.lock().unwrap().push(Exchange {
        request: body.to_vec(),
        status,
        response: response.clone(),
    });
    let status = StatusCode::from_u16(status).unwrap();
    if response.is_empty() {
        status.into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/teep+cbor")],
            response,
        )
            .into_response()
    }
}

impl Proxy {
    /// A proxy to the TAM at `upstream` (its TEEP/HTTP URI), forwarding until told otherwise.
    pub fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Shared {
            upstream: Arc::new(Mutex::new(upstream.to_owned())),
            plans: Arc::default(),
            log: Arc::default(),
            client: reqwest::Client::new(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let uri = format!("http://{}/tam", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(post)
            .with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            uri,
            shared,
            _runtime: runtime,
        }
    }

    /// The next POSTs are handled by `plans`, in order (then forwarded again).
    pub fn plan(&self, plans: impl IntoIterator<Item = Plan>) {
        self.shared.plans.lock().unwrap().extend(plans);
    }

    /// Forward to another TAM from now on.
    pub fn set_upstream(&self, upstream: &str) {
        upstream.clone_into(&mut self.shared.upstream.lock().unwrap());
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Forgets the exchanges recorded so far.
    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
    }
}

/// One policy check whose Success the proxy keeps from the TAM (it answers 204 in the
/// TAM's place): the Success, signed by the Agent, to deliver later.
pub fn withheld_success(d: &Deployment, proxy: &Proxy) -> Vec<u8> {
    proxy.clear();
    proxy.plan([Plan::Forward, Plan::Forward, Plan::Answer(Vec::new())]);
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    let success = seen.get(2).map(|x| x.request.clone()).unwrap_or_default();
    assert!(
        matches!(message(&success), Some(Message::Success(_))),
        "no Success to withhold: {seen:?}"
    );
    success
}

/// One policy check whose first POST carries `bytes` to the TAM (a late or replayed
/// message); the exchange.
pub fn deliver(d: &Deployment, proxy: &Proxy, bytes: Vec<u8>) -> Exchange {
    proxy.clear();
    proxy.plan([Plan::Rewrite(Arc::new(move |_: &[u8]| bytes.clone()))]);
    let _ = d.output(&d.once_args());
    proxy.exchanges().first().cloned().unwrap()
}

/// The TEEP message inside a signed TEEP/HTTP body, unverified (the test reads what went
/// by); `None` when the bytes are not one.
pub fn message(bytes: &[u8]) -> Option<Message> {
    Unverified::parse(bytes, Numbering::Draft26)
        .ok()
        .map(|u| u.message().clone())
}

/// A fresh P-256 key nobody trusts.
pub fn stranger() -> teep_cose::PrivateKey {
    teep_cose::PrivateKey::generate(teep_cose::Curve::P256).unwrap()
}

/// The ESP256 key of the TAM whose data directory is `data_dir` (what a compromised TAM,
/// or its stolen key, signs with).
pub fn tam_key(data_dir: &str) -> teep_cose::PrivateKey {
    private_key(&format!("{data_dir}/tam-esp256.key"))
}

/// The SUIT reports of a Success or Error, opened with the TAM's encryption key (in its
/// data directory `data_dir`, as the TAM opens them).
pub fn open_reports(data_dir: &str, reports: &[Vec<u8>]) -> Vec<teep_suit::report::ReceivedReport> {
    let key = private_key(&format!("{data_dir}/tam-encryption.key"));
    let no_device_keys = teep_cose::TrustStore::new();
    let keys = teep_suit::report::ReportKeys {
        provider: teep_cose::default_provider(),
        device: &no_device_keys,
        tam: Some(&key),
        require_signature: false,
    };
    reports
        .iter()
        .map(|r| teep_suit::report::ReceivedReport::decode(r, &keys).unwrap())
        .collect()
}

/// A private key file of a TAM's data directory (COSE_Key or PEM).
fn private_key(path: &str) -> teep_cose::PrivateKey {
    let bytes = std::fs::read(path).unwrap();
    teep_cose::PrivateKey::from_cose_key_bytes(&bytes)
        .or_else(|_| teep_cose::PrivateKey::from_pem(&String::from_utf8_lossy(&bytes)))
        .unwrap()
}

/// `message` signed with `key` (COSE_Sign1, -26 numbering).
pub fn sign_with(key: &teep_cose::PrivateKey, message: &Message) -> Vec<u8> {
    let signer = teep_cose::default_provider()
        .signer(key, key.default_algorithm())
        .unwrap();
    teep_proto::sign_message(
        message,
        Numbering::Draft26,
        signer.as_ref(),
        &teep_cose::SignOptions::default(),
    )
    .unwrap()
}

/// The bodies of the TAM's answers that are Updates, oldest first.
pub fn updates(exchanges: &[Exchange]) -> Vec<Vec<u8>> {
    exchanges
        .iter()
        .filter(|x| matches!(message(&x.response), Some(Message::Update(_))))
        .map(|x| x.response.clone())
        .collect()
}

/// A further `teep tam serve` beside the deployment's, with its own data directory.
pub struct Tam {
    /// Its TEEP/HTTP URI.
    pub uri: String,
    /// Its admin API.
    pub admin_url: String,
    /// Its data directory.
    pub data: String,
    /// The process.
    pub process: Spawned,
}

impl Tam {
    /// Starts a TAM on `dir` under the deployment's directory (`extra` options), and
    /// registers the deployment's TC signer with it.
    pub fn start(d: &Deployment, dir: &str, extra: &[&str]) -> Self {
        let data = d.work().join(dir).to_str().unwrap().to_owned();
        let process = d.spawn_tam(&data, extra);
        let tam = Self {
            uri: format!("http://{}", process.after("listening on http://")),
            admin_url: process.after("admin API on ").to_owned(),
            data,
            process,
        };
        tam.admin(
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
        tam
    }

    /// `teep tam ARGS` against this TAM's admin API, unjudged.
    pub fn admin_output(&self, d: &Deployment, args: &[&str]) -> std::process::Output {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &self.admin_url, "--data-dir", &self.data]);
        d.output(&all)
    }

    /// `teep tam ARGS` against this TAM's admin API; must succeed.
    pub fn admin(&self, d: &Deployment, args: &[&str]) -> String {
        crate::common::ok(self.admin_output(d, args))
    }
}

/// The record of `device_id` in `teep tam devices --json` output.
pub fn device_record(devices_json: &str, device_id: &str) -> serde_json::Value {
    let devices: serde_json::Value = serde_json::from_str(devices_json).unwrap();
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == device_id)
        .unwrap_or_else(|| panic!("device {device_id} not in {devices}"))
        .clone()
}

/// Waits (polling, up to 60 s on a loaded machine) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

impl Proxy {
    /// Waits until a TEEP session through the proxy has ended: its last POST got an empty
    /// answer (the TAM has nothing more to send).
    pub fn wait_session_end(&self) {
        wait_until("the session through the proxy ends", || {
            self.exchanges()
                .last()
                .is_some_and(|x| x.response.is_empty())
        });
    }
}
