//! Scripted TAMs on loopback for the Broker's tests: axum servers that answer from a queue
//! and record what they were sent, and raw TCP servers for what axum will not do (close
//! mid-request, lie about or never end a body). The messages are opaque bytes: the Broker
//! never reads them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use teep_broker::{
    AgentAnswer, AgentCall, AgentError, Broker, BrokerConfig, BrokerError, ComponentId, HttpConfig,
    Outcome, PlainHttp, ScriptedAgent, TaRequest, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const TEEP: &str = "application/teep+cbor";

/// What the scripted TAM answers to one POST.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with a TEEP message and the headers TEEP/HTTP §2 asks for (and a cookie, which
    /// the Broker must not send back).
    Teep(Vec<u8>),
    /// 200 with this content type (none if `None`) and body.
    Raw(Option<&'static str>, Vec<u8>),
    /// 204 No Content: the exchange is over.
    NoContent,
    /// A bare status.
    Status(u16),
    /// A redirect to the TAM's `/elsewhere`, which counts its visitors.
    Redirect(u16),
    /// The answer, after a delay.
    Slow(Duration, Box<Self>),
}

/// One POST as the TAM saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub body: Vec<u8>,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub content_length: Option<String>,
    pub cookie: bool,
}

pub struct Tam {
    pub answers: Mutex<VecDeque<Answer>>,
    /// Answer once the queue is empty.
    pub fallback: Answer,
    pub seen: Mutex<Vec<Seen>>,
    pub elsewhere: AtomicUsize,
    pub addr: SocketAddr,
}

impl Tam {
    pub fn uri(&self) -> String {
        format!("http://{}/tam", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

pub fn render(answer: Answer, tam: &Tam) -> Response {
    match answer {
        Answer::Teep(body) => (
            [
                (header::CONTENT_TYPE, TEEP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::SET_COOKIE, "session=tracked; Path=/"),
            ],
            body,
        )
            .into_response(),
        Answer::Raw(Some(content_type), body) => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Answer::Raw(None, body) => {
            // axum labels a `Vec<u8>` as octet-stream; this answer has no type at all.
            let mut response = body.into_response();
            response.headers_mut().remove(header::CONTENT_TYPE);
            response
        }
        Answer::NoContent => StatusCode::NO_CONTENT.into_response(),
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Redirect(code) => (
            StatusCode::from_u16(code).unwrap(),
            [(header::LOCATION, format!("http://{}/elsewhere", tam.addr))],
        )
            .into_response(),
        Answer::Slow(..) => unreachable!("delays are taken before rendering"),
    }
}

pub async fn tam_endpoint(
    State(tam): State<Arc<Tam>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tam.seen.lock().unwrap().push(Seen {
        body: body.to_vec(),
        accept: header_text(&headers, header::ACCEPT),
        content_type: header_text(&headers, header::CONTENT_TYPE),
        content_length: header_text(&headers, header::CONTENT_LENGTH),
        cookie: headers.contains_key(header::COOKIE),
    });
    let mut answer = tam
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| tam.fallback.clone());
    while let Answer::Slow(delay, then) = answer {
        tokio::time::sleep(delay).await;
        answer = *then;
    }
    render(answer, &tam)
}

pub async fn elsewhere(State(tam): State<Arc<Tam>>) -> StatusCode {
    tam.elsewhere.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

pub async fn tam_on(listener: TcpListener, answers: Vec<Answer>, fallback: Answer) -> Arc<Tam> {
    let tam = Arc::new(Tam {
        answers: Mutex::new(answers.into()),
        fallback,
        seen: Mutex::new(Vec::new()),
        elsewhere: AtomicUsize::new(0),
        addr: listener.local_addr().unwrap(),
    });
    let app = Router::new()
        .route("/tam", any(tam_endpoint))
        .route("/elsewhere", any(elsewhere))
        .with_state(tam.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    tam
}

pub async fn tam(answers: Vec<Answer>) -> Arc<Tam> {
    tam_on(loopback_listener().await, answers, Answer::NoContent).await
}

pub async fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    loopback_listener().await.local_addr().unwrap()
}

/// A TCP server that reads the start of each request and closes the connection without
/// answering; it counts the connections.
pub async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = loopback_listener().await;
    let uri = format!("http://{}/tam", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    (uri, accepted)
}

/// A TCP server answering every request with `head` (status line and headers), then, if
/// `endless`, a chunked body that never ends, else nothing while it holds the connection
/// open. It counts the body bytes it managed to write.
pub async fn raw_server(head: &'static str, endless: bool) -> (String, Arc<AtomicUsize>) {
    let listener = loopback_listener().await;
    let uri = format!("http://{}/tam", listener.local_addr().unwrap());
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if !endless {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                let chunk = [0x41u8; 4096];
                let framed = [b"1000\r\n".as_slice(), &chunk, b"\r\n"].concat();
                while stream.write_all(&framed).await.is_ok() {
                    count.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            });
        }
    });
    (uri, written)
}

pub fn config() -> BrokerConfig {
    BrokerConfig {
        http: HttpConfig {
            plain_http: PlainHttp::Loopback,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            retries: 2,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            ..HttpConfig::default()
        },
        ..BrokerConfig::default()
    }
}

pub fn broker(agent: ScriptedAgent) -> Broker<ScriptedAgent> {
    Broker::new(agent, config()).unwrap()
}

pub fn contact(uri: &str) -> Result<AgentAnswer, AgentError> {
    Ok(AgentAnswer::Contact {
        tam_uri: uri.to_owned(),
        message: None,
    })
}

pub fn ta() -> ComponentId {
    ComponentId(vec![b"ta.wasm".to_vec()])
}

pub fn wants_ta(hint: Option<&str>) -> TaRequest {
    TaRequest {
        component_id: ta(),
        tam_uri: hint.map(str::to_owned),
    }
}

pub fn relayed(uri: &str, message: &[u8]) -> AgentCall {
    AgentCall::ProcessTeepMessage {
        tam_uri: uri.to_owned(),
        message: message.to_vec(),
    }
}

pub fn process_error(uri: &str, error: TransportError) -> AgentCall {
    AgentCall::ProcessError {
        tam_uri: uri.to_owned(),
        error,
    }
}

/// A trigger failed because no connection could be made (refused, TLS handshake).
pub fn assert_not_connected(result: &Result<Outcome, BrokerError>) {
    assert!(
        matches!(
            result,
            Err(BrokerError::Transport(TransportError::Connect(_)))
        ),
        "{result:?}"
    );
}
