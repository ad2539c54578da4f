//! The Broker against scripted TAMs on loopback: axum servers that answer from a queue and
//! record what they were sent, and raw TCP servers for what axum will not do (close
//! mid-request, stream an unbounded chunked body). The messages are opaque bytes: the
//! Broker never reads them.

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
    Outcome, PlainHttp, PolicyReport, ScriptedAgent, TaRequest, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TEEP: &str = "application/teep+cbor";

/// What the scripted TAM answers to one POST.
#[derive(Clone, Debug)]
enum Answer {
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
struct Seen {
    body: Vec<u8>,
    accept: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    cookie: bool,
}

struct Tam {
    answers: Mutex<VecDeque<Answer>>,
    /// Answer once the queue is empty.
    fallback: Answer,
    seen: Mutex<Vec<Seen>>,
    elsewhere: AtomicUsize,
    addr: SocketAddr,
}

impl Tam {
    fn uri(&self) -> String {
        format!("http://{}/tam", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

fn render(answer: Answer, tam: &Tam) -> Response {
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

async fn tam_endpoint(State(tam): State<Arc<Tam>>, headers: HeaderMap, body: Bytes) -> Response {
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

async fn elsewhere(State(tam): State<Arc<Tam>>) -> StatusCode {
    tam.elsewhere.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn tam_on(listener: TcpListener, answers: Vec<Answer>, fallback: Answer) -> Arc<Tam> {
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

async fn tam(answers: Vec<Answer>) -> Arc<Tam> {
    tam_on(loopback_listener().await, answers, Answer::NoContent).await
}

async fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A loopback port with nothing listening on it.
async fn closed_port() -> SocketAddr {
    loopback_listener().await.local_addr().unwrap()
}

/// A TCP server that reads the start of each request and closes the connection without
/// answering; it counts the connections.
async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
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

/// A TCP server answering every request with a chunked TEEP body that never ends (no
/// `Content-Length` to refuse up front); it counts the bytes it managed to write.
async fn endless_chunked_server() -> (String, Arc<AtomicUsize>) {
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
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/teep+cbor\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
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

fn config() -> BrokerConfig {
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

fn broker(agent: ScriptedAgent) -> Broker<ScriptedAgent> {
    Broker::new(agent, config()).unwrap()
}

fn contact(uri: &str) -> Result<AgentAnswer, AgentError> {
    Ok(AgentAnswer::Contact {
        tam_uri: uri.to_owned(),
        message: None,
    })
}

fn ta() -> ComponentId {
    ComponentId(vec![b"ta.wasm".to_vec()])
}

fn wants_ta(hint: Option<&str>) -> TaRequest {
    TaRequest {
        component_id: ta(),
        tam_uri: hint.map(str::to_owned),
    }
}

fn relayed(uri: &str, message: &[u8]) -> AgentCall {
    AgentCall::ProcessTeepMessage {
        tam_uri: uri.to_owned(),
        message: message.to_vec(),
    }
}

fn process_error(uri: &str, error: TransportError) -> AgentCall {
    AgentCall::ProcessError {
        tam_uri: uri.to_owned(),
        error,
    }
}

/// Empty POST → QueryRequest to the Agent → its QueryResponse POSTed → Update to the Agent
/// → its Success POSTed → 204 ends. The Agent's TAM URI wins over the app's hint; the
/// headers are the draft's; a cookie set by the TAM is never sent back.
#[tokio::test]
async fn whole_exchange_relays_every_message_until_no_content() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::Raw(Some("Application/TEEP+CBOR; v=1"), b"update".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())))
        .reply(Ok(Some(b"success".to_vec())));
    let broker = broker(agent);

    let hint = "https://hint.invalid/tam";
    let outcome = broker.request_ta(wants_ta(Some(hint))).await.unwrap();

    assert_eq!(outcome, Outcome::Completed { exchanges: 1 });
    let uri = tam.uri();
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(Some(hint))),
            relayed(&uri, b"query-request"),
            relayed(&uri, b"update"),
        ]
    );
    let seen = tam.seen();
    let bodies: Vec<&[u8]> = seen.iter().map(|s| s.body.as_slice()).collect();
    assert_eq!(bodies, [&b""[..], b"query-response", b"success"]);
    let opening = &seen[0];
    assert_eq!(opening.accept.as_deref(), Some(TEEP));
    assert_eq!(opening.content_type, None);
    assert_eq!(opening.content_length.as_deref(), Some("0"));
    for message in &seen[1..] {
        assert_eq!(message.accept.as_deref(), Some(TEEP));
        assert_eq!(message.content_type.as_deref(), Some(TEEP));
    }
    assert!(seen.iter().all(|s| !s.cookie), "cookie sent back: {seen:?}");
}

#[tokio::test]
async fn agent_first_message_is_posted_instead_of_an_empty_body() {
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new().on_request_ta(Ok(AgentAnswer::Contact {
        tam_uri: tam.uri(),
        message: Some(b"query-response".to_vec()),
    }));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    let seen = tam.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, b"query-response");
    assert_eq!(seen[0].content_type.as_deref(), Some(TEEP));
}

#[tokio::test]
async fn no_content_on_the_first_post_ends_the_exchange() {
    for end in [Answer::NoContent, Answer::Raw(None, Vec::new())] {
        let tam = tam(vec![end.clone()]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Ok(Outcome::Completed { exchanges: 1 }),
            "{end:?}"
        );
        assert_eq!(
            broker.agent().calls(),
            [AgentCall::RequestTa(wants_ta(None))]
        );
        assert_eq!(tam.seen().len(), 1);
    }
}

#[tokio::test]
async fn agent_with_nothing_to_do_contacts_no_tam() {
    let broker = broker(ScriptedAgent::new().on_request_ta(Ok(AgentAnswer::Nothing)));
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::NothingToDo)
    );
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::RequestTa(wants_ta(None))]
    );
}

#[tokio::test]
async fn unrequest_runs_the_exchange_the_agent_asks_for() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_unrequest_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response-unneeded".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.unrequest_ta(ta()).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::UnrequestTa(ta()),
            relayed(&tam.uri(), b"query-request")
        ]
    );
    assert_eq!(tam.seen()[1].body, b"query-response-unneeded");
}

/// The TAM is down for the first attempts and comes up while the Broker backs off.
#[tokio::test]
async fn tam_down_then_up_is_reached_by_a_retry() {
    let addr = closed_port().await;
    let uri = format!("http://{addr}/tam");
    let mut cfg = config();
    cfg.http.retries = 6;
    cfg.http.backoff_initial = Duration::from_millis(50);
    cfg.http.backoff_max = Duration::from_millis(200);
    let agent = ScriptedAgent::new().on_request_ta(contact(&uri));
    let broker = Arc::new(Broker::new(agent, cfg).unwrap());
    let running = tokio::spawn({
        let broker = broker.clone();
        async move { broker.request_ta(wants_ta(None)).await }
    });

    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!running.is_finished());
    let tam = tam_on(
        TcpListener::bind(addr).await.unwrap(),
        vec![Answer::NoContent],
        Answer::NoContent,
    )
    .await;

    assert_eq!(
        running.await.unwrap(),
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(tam.seen().len(), 1);
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::RequestTa(wants_ta(None))]
    );
}

#[tokio::test]
async fn tam_that_stays_down_is_reported_through_process_error() {
    let uri = format!("http://{}/tam", closed_port().await);
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert!(
        matches!(
            result,
            Err(BrokerError::Transport(TransportError::Connect(_)))
        ),
        "{result:?}"
    );
    let calls = broker.agent().calls();
    assert_eq!(calls.len(), 2);
    assert!(
        matches!(&calls[1], AgentCall::ProcessError { tam_uri, error: TransportError::Connect(_) } if *tam_uri == uri),
        "{calls:?}"
    );
}

/// `retries` bounds the attempts exactly: a server that hangs up is tried 1 + retries times.
#[tokio::test]
async fn retries_are_bounded_and_then_the_agent_is_told() {
    let (uri, accepted) = hang_up_server().await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert!(
        matches!(result, Err(BrokerError::Transport(_))),
        "{result:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1 + 2);
    let calls = broker.agent().calls();
    assert!(
        matches!(
            calls.as_slice(),
            [AgentCall::RequestTa(_), AgentCall::ProcessError { .. }]
        ),
        "{calls:?}"
    );
}

/// A message POST that may have been delivered is not repeated: the Agent decides.
#[tokio::test]
async fn a_message_post_is_not_repeated_after_a_hang_up() {
    let (uri, accepted) = hang_up_server().await;
    let agent = ScriptedAgent::new().on_request_ta(Ok(AgentAnswer::Contact {
        tam_uri: uri.clone(),
        message: Some(b"query-response".to_vec()),
    }));
    let broker = broker(agent);

    let result = broker.request_ta(wants_ta(None)).await;

    assert_eq!(
        result,
        Err(BrokerError::Transport(match &broker.agent().calls()[1] {
            AgentCall::ProcessError { error, .. } => error.clone(),
            other => panic!("{other:?}"),
        }))
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http_error_status_is_reported_and_not_retried() {
    let tam = tam(vec![Answer::Status(500), Answer::NoContent]).await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::Status {
            status: 500
        }))
    );
    assert_eq!(tam.seen().len(), 1);
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::Status { status: 500 })
    );
}

#[tokio::test]
async fn redirect_is_an_error_and_its_target_never_contacted() {
    for code in [301, 302, 303, 307, 308] {
        let tam = tam(vec![Answer::Redirect(code)]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        let error = TransportError::Redirect { status: code };
        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Err(BrokerError::Transport(error.clone()))
        );
        assert_eq!(tam.elsewhere.load(Ordering::SeqCst), 0, "{code} followed");
        assert_eq!(tam.seen().len(), 1);
        assert_eq!(broker.agent().calls()[1], process_error(&tam.uri(), error));
    }
}

#[tokio::test]
async fn after_a_failure_the_agent_may_name_another_tam() {
    let down = format!("http://{}/tam", closed_port().await);
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&down))
        .on_process_error(contact(&tam.uri()));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 2 })
    );
    assert_eq!(tam.seen().len(), 1);
}

#[tokio::test]
async fn an_agent_naming_failing_tams_forever_is_cut_off() {
    let down = format!("http://{}/tam", closed_port().await);
    let mut agent = ScriptedAgent::new().on_request_ta(contact(&down));
    for _ in 0..10 {
        agent = agent.on_process_error(contact(&down));
    }
    let mut cfg = config();
    cfg.http.retries = 0;
    cfg.max_exchanges_per_trigger = 3;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::TooManyExchanges { limit: 3 })
    );
    let errors = broker
        .agent()
        .calls()
        .iter()
        .filter(|c| matches!(c, AgentCall::ProcessError { .. }))
        .count();
    assert_eq!(errors, 3);
}

#[tokio::test]
async fn wrong_or_missing_media_type_is_refused_and_not_relayed() {
    for (content_type, expected) in [
        (Some("application/cbor"), Some("application/cbor")),
        (
            Some("text/html; application/teep+cbor"),
            Some("text/html; application/teep+cbor"),
        ),
        (None, None),
    ] {
        let tam = tam(vec![Answer::Raw(content_type, b"<html>".to_vec())]).await;
        let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

        let error = TransportError::MediaType(expected.map(str::to_owned));
        assert_eq!(
            broker.request_ta(wants_ta(None)).await,
            Err(BrokerError::Transport(error.clone()))
        );
        assert_eq!(
            broker.agent().calls(),
            [
                AgentCall::RequestTa(wants_ta(None)),
                process_error(&tam.uri(), error)
            ]
        );
    }
}

fn small_limit() -> BrokerConfig {
    let mut cfg = config();
    cfg.http.max_response = 1024;
    cfg
}

#[tokio::test]
async fn response_at_the_limit_is_relayed_and_one_byte_more_is_refused() {
    let tam = tam(vec![
        Answer::Teep(vec![7; 1024]),
        Answer::Teep(vec![7; 1025]),
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"again".to_vec())));
    let broker = Broker::new(agent, small_limit()).unwrap();

    let error = TransportError::TooLarge { limit: 1024 };
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(error.clone()))
    );
    assert_eq!(
        broker.agent().calls()[1..],
        [
            relayed(&tam.uri(), &[7; 1024]),
            process_error(&tam.uri(), error)
        ]
    );
}

/// Without a `Content-Length` the limit is enforced while reading: the Broker stops long
/// before the endless body would have filled its memory.
#[tokio::test]
async fn endless_chunked_response_is_cut_at_the_limit() {
    let (uri, written) = endless_chunked_server().await;
    let broker = Broker::new(
        ScriptedAgent::new().on_request_ta(contact(&uri)),
        small_limit(),
    )
    .unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::TooLarge {
            limit: 1024
        }))
    );
    // Socket buffers hold a few MiB at most; an unbounded read would never return.
    assert!(written.load(Ordering::SeqCst) < 64 * 1024 * 1024);
}

/// The default limit carries an Update with a 1 MiB TC.
#[tokio::test]
async fn default_limit_carries_an_update_with_a_one_mib_tc() {
    let update: Vec<u8> = (0..(1024 * 1024 + 4096)).map(|i: u32| i as u8).collect();
    let tam = tam(vec![Answer::Teep(update.clone())]).await;
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&tam.uri())));

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(broker.agent().calls()[1], relayed(&tam.uri(), &update));
}

#[tokio::test]
async fn slow_tam_times_out() {
    let slow = Answer::Slow(Duration::from_secs(30), Box::new(Answer::NoContent));
    let tam = tam(vec![slow.clone(), slow]).await;
    let mut cfg = config();
    cfg.http.request_timeout = Duration::from_millis(200);
    cfg.http.retries = 1;
    let broker = Broker::new(ScriptedAgent::new().on_request_ta(contact(&tam.uri())), cfg).unwrap();

    let started = std::time::Instant::now();
    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::Timeout))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The empty POST changes nothing at the TAM, so it was tried again once.
    assert_eq!(tam.seen().len(), 2);
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::Timeout)
    );
}

#[tokio::test]
async fn endless_ping_pong_is_cut_off() {
    let listener = loopback_listener().await;
    let tam = tam_on(listener, Vec::new(), Answer::Teep(b"again".to_vec())).await;
    let mut agent = ScriptedAgent::new().on_request_ta(contact(&tam.uri()));
    for _ in 0..10 {
        agent = agent.reply(Ok(Some(b"more".to_vec())));
    }
    let mut cfg = config();
    cfg.max_messages_per_exchange = 4;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::ExchangeTooLong {
            limit: 4
        }))
    );
    assert_eq!(tam.seen().len(), 4);
}

#[tokio::test]
async fn agent_failure_drops_the_exchange_without_process_error() {
    let tam = tam(vec![Answer::Teep(b"query-request".to_vec())]).await;
    let failure = AgentError::Internal("sealed storage".into());
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Err(failure.clone()));
    let broker = broker(agent);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Agent(failure))
    );
    assert_eq!(
        broker.agent().calls(),
        [
            AgentCall::RequestTa(wants_ta(None)),
            relayed(&tam.uri(), b"query-request")
        ]
    );
    assert_eq!(tam.seen().len(), 1);
}

#[tokio::test]
async fn plain_http_is_refused_by_default() {
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new().on_request_ta(contact(&tam.uri()));
    let broker = Broker::new(agent, BrokerConfig::default()).unwrap();

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Err(BrokerError::Transport(TransportError::PlainHttpRefused))
    );
    assert!(tam.seen().is_empty());
    assert_eq!(
        broker.agent().calls()[1],
        process_error(&tam.uri(), TransportError::PlainHttpRefused)
    );
}

/// An `https://` URI is never downgraded: against a server that does not speak TLS the
/// handshake fails and no request reaches it.
#[tokio::test]
async fn https_uri_needs_a_tls_server() {
    let tam = tam(vec![Answer::NoContent]).await;
    let uri = format!("https://{}/tam", tam.addr);
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    let result = broker.request_ta(wants_ta(None)).await;

    assert!(
        matches!(
            result,
            Err(BrokerError::Transport(TransportError::Connect(_)))
        ),
        "{result:?}"
    );
    assert!(tam.seen().is_empty());
}

#[tokio::test]
async fn policy_check_asks_until_the_agent_answers_nothing() {
    let tam = tam(vec![
        Answer::Teep(b"query-request".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let down = format!("http://{}/tam", closed_port().await);
    let agent = ScriptedAgent::new()
        .on_policy_check(contact(&tam.uri()))
        .on_policy_check(contact(&down))
        .on_policy_check(Ok(AgentAnswer::Nothing))
        .on_policy_check(contact(&tam.uri()))
        .reply(Ok(Some(b"query-response".to_vec())));
    let broker = broker(agent);

    assert_eq!(
        broker.policy_check().await,
        Ok(PolicyReport {
            completed: 1,
            failed: 1
        })
    );
    let checks = broker
        .agent()
        .calls()
        .iter()
        .filter(|c| **c == AgentCall::RequestPolicyCheck)
        .count();
    assert_eq!(checks, 3, "the fourth answer must not be asked for");
    assert_eq!(tam.seen().len(), 2);
}

#[tokio::test]
async fn policy_check_that_never_ends_is_cut_off() {
    let tam = tam(Vec::new()).await;
    let mut agent = ScriptedAgent::new();
    for _ in 0..20 {
        agent = agent.on_policy_check(contact(&tam.uri()));
    }
    let mut cfg = config();
    cfg.max_policy_rounds = 5;
    let broker = Broker::new(agent, cfg).unwrap();

    assert_eq!(
        broker.policy_check().await,
        Err(BrokerError::PolicyCheckUnbounded { limit: 5 })
    );
    assert_eq!(tam.seen().len(), 5);
}

/// The timer runs a check at start, which stops at the Agent's first "nothing"; the next
/// check waits for the interval; shutdown ends the loop.
#[tokio::test]
async fn policy_timer_checks_until_nothing_then_waits() {
    let tam = tam(vec![Answer::NoContent]).await;
    let agent = ScriptedAgent::new()
        .on_policy_check(contact(&tam.uri()))
        .on_policy_check(Ok(AgentAnswer::Nothing))
        .on_policy_check(contact(&tam.uri()));
    let mut cfg = config();
    cfg.policy_check_interval = Duration::from_secs(3600);
    let broker = Arc::new(Broker::new(agent, cfg).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let timer = tokio::spawn({
        let broker = broker.clone();
        async move {
            broker
                .run_policy_checks(async {
                    let _ = stopped.await;
                })
                .await;
        }
    });

    let calls = || broker.agent().calls().len();
    tokio::time::timeout(Duration::from_secs(5), async {
        while calls() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        broker.agent().calls(),
        [AgentCall::RequestPolicyCheck, AgentCall::RequestPolicyCheck]
    );
    assert_eq!(tam.seen().len(), 1);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), timer)
        .await
        .unwrap()
        .unwrap();
}

/// Repeated checks on a short interval: every tick asks again.
#[tokio::test]
async fn policy_timer_repeats_on_its_interval() {
    let mut cfg = config();
    cfg.policy_check_interval = Duration::from_millis(20);
    let broker = Arc::new(Broker::new(ScriptedAgent::new(), cfg).unwrap());
    let shutdown = tokio::time::sleep(Duration::from_millis(300));

    broker.run_policy_checks(shutdown).await;

    let checks = broker.agent().calls().len();
    assert!(
        (3..=20).contains(&checks),
        "{checks} checks in 300 ms at 20 ms"
    );
}

/// Log lines name the TAM, sizes and status, never the bytes relayed.
#[tokio::test]
async fn logs_one_line_per_step_without_message_contents() {
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let tam = tam(vec![
        Answer::Teep(b"SECRET-QUERY-REQUEST".to_vec()),
        Answer::NoContent,
    ])
    .await;
    let agent = ScriptedAgent::new()
        .on_request_ta(contact(&tam.uri()))
        .reply(Ok(Some(b"SECRET-QUERY-RESPONSE".to_vec())));
    broker(agent).request_ta(wants_ta(None)).await.unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("teep/http step"))
        .collect();
    assert_eq!(steps.len(), 2, "{log}");
    assert!(
        steps[0].contains("sent=0")
            && steps[0].contains("status=200")
            && steps[0].contains("received=20"),
        "{log}"
    );
    assert!(
        steps[1].contains("sent=21")
            && steps[1].contains("status=204")
            && steps[1].contains("received=0"),
        "{log}"
    );
    assert!(
        !log.contains("SECRET") && !log.contains(&hex::encode("SECRET")),
        "{log}"
    );
}

mod local_api {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde_json::{Value, json};
    use teep_broker::TaInfo;

    fn installed() -> ScriptedAgent {
        ScriptedAgent::new().with_ta(
            TaInfo {
                component_id: ta(),
                sequence_number: Some(3),
            },
            |input| input.iter().rev().copied().collect(),
        )
    }

    async fn serve(agent: ScriptedAgent) -> (String, Arc<Broker<ScriptedAgent>>) {
        let broker = Arc::new(broker(agent));
        let listener = loopback_listener().await;
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(teep_broker::local_api::serve_loopback(
            broker.clone(),
            listener,
        ));
        (base, broker)
    }

    async fn call(base: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let request = match body {
            Some(body) => client
                .post(format!("{base}{path}"))
                .header("content-type", "application/json")
                .body(body),
            None => client.get(format!("{base}{path}")),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
        call(base, path, Some(serde_json::to_vec(&body).unwrap())).await
    }

    const TA_HEX: &str = "74612e7761736d"; // "ta.wasm"

    #[tokio::test]
    async fn lists_installed_tas() {
        let (base, _) = serve(installed()).await;
        assert_eq!(
            call(&base, "/v1/tas", None).await,
            (
                200,
                json!({ "tas": [{ "component_id": [TA_HEX], "sequence_number": 3 }] })
            )
        );
    }

    #[tokio::test]
    async fn invokes_a_ta_with_base64_bytes() {
        let (base, broker) = serve(installed()).await;
        let input = b"\x00hello\xff";
        let (status, body) = post(
            &base,
            "/v1/tas/invoke",
            json!({ "component_id": [TA_HEX], "input": BASE64.encode(input) }),
        )
        .await;
        assert_eq!(status, 200);
        let output = BASE64.decode(body["output"].as_str().unwrap()).unwrap();
        assert_eq!(output, b"\xffolleh\x00");
        assert_eq!(
            broker.agent().calls(),
            [AgentCall::InvokeTa {
                component_id: ta(),
                input: input.to_vec()
            }]
        );
    }

    #[tokio::test]
    async fn invoke_errors_are_typed_and_bad_input_never_reaches_the_agent() {
        let (base, broker) = serve(installed()).await;
        let (status, body) = post(
            &base,
            "/v1/tas/invoke",
            json!({ "component_id": ["00"], "input": "" }),
        )
        .await;
        assert_eq!((status, &body["error"]), (404, &json!("unknown_ta")));
        let calls_before = broker.agent().calls().len();

        let (status, body) = post(
            &base,
            "/v1/tas/invoke",
            json!({ "component_id": [TA_HEX], "input": "not base64!" }),
        )
        .await;
        assert_eq!((status, &body["error"]), (400, &json!("bad_input")));
        for malformed in [
            json!({ "component_id": ["zz"], "input": "" }),
            json!({ "component_id": TA_HEX, "input": "" }),
            json!({ "component_id": [TA_HEX], "input": "", "extra": 1 }),
            json!({ "input": "" }),
        ] {
            let (status, _) = post(&base, "/v1/tas/invoke", malformed.clone()).await;
            assert!((400..500).contains(&status), "{malformed} -> {status}");
        }
        let huge = vec![b' '; teep_broker::local_api::MAX_LOCAL_REQUEST + 1];
        assert_eq!(call(&base, "/v1/tas/invoke", Some(huge)).await.0, 413);
        assert_eq!(broker.agent().calls().len(), calls_before);
    }

    #[tokio::test]
    async fn request_runs_the_exchange_and_reports_its_outcome() {
        let tam = tam(vec![
            Answer::Teep(b"query-request".to_vec()),
            Answer::NoContent,
        ])
        .await;
        let agent = installed()
            .on_request_ta(contact(&tam.uri()))
            .reply(Ok(Some(b"query-response".to_vec())))
            .on_request_ta(Ok(AgentAnswer::Nothing));
        let (base, broker) = serve(agent).await;
        let hint = "https://hint.invalid/tam";

        let request = json!({ "component_id": [TA_HEX], "tam_uri": hint });
        assert_eq!(
            post(&base, "/v1/tas/request", request.clone()).await,
            (200, json!({ "outcome": "completed", "exchanges": 1 }))
        );
        assert_eq!(tam.seen().len(), 2);
        assert_eq!(
            broker.agent().calls()[0],
            AgentCall::RequestTa(wants_ta(Some(hint)))
        );

        assert_eq!(
            post(&base, "/v1/tas/request", request).await,
            (200, json!({ "outcome": "nothing_to_do", "exchanges": 0 }))
        );
        assert_eq!(tam.seen().len(), 2);
    }

    #[tokio::test]
    async fn unreachable_tam_is_a_gateway_error() {
        let down = format!("http://{}/tam", closed_port().await);
        let (base, _) = serve(installed().on_unrequest_ta(contact(&down))).await;
        let (status, body) = post(
            &base,
            "/v1/tas/unrequest",
            json!({ "component_id": [TA_HEX] }),
        )
        .await;
        assert_eq!((status, &body["error"]), (502, &json!("tam_unreachable")));
    }

    #[tokio::test]
    async fn unrequest_and_policy_check_reach_the_agent() {
        let tam = tam(vec![Answer::NoContent, Answer::NoContent]).await;
        let agent = installed()
            .on_unrequest_ta(contact(&tam.uri()))
            .on_policy_check(contact(&tam.uri()));
        let (base, broker) = serve(agent).await;

        assert_eq!(
            post(
                &base,
                "/v1/tas/unrequest",
                json!({ "component_id": [TA_HEX] })
            )
            .await,
            (200, json!({ "outcome": "completed", "exchanges": 1 }))
        );
        assert_eq!(
            call(&base, "/v1/policy-check", Some(Vec::new())).await,
            (200, json!({ "completed": 1, "failed": 0 }))
        );
        assert_eq!(
            broker.agent().calls(),
            [
                AgentCall::UnrequestTa(ta()),
                AgentCall::RequestPolicyCheck,
                AgentCall::RequestPolicyCheck
            ]
        );
        assert_eq!(tam.seen().len(), 2);
    }

    #[tokio::test]
    async fn refuses_to_listen_beyond_loopback() {
        let broker = Arc::new(broker(installed()));
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
        let error = teep_broker::local_api::serve_loopback(broker, listener)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn serves_on_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.sock");
        let broker = Arc::new(broker(installed()));
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(teep_broker::local_api::serve_unix(broker, listener));

        let client = reqwest::Client::builder()
            .unix_socket(path)
            .build()
            .unwrap();
        let response = client.get("http://broker/v1/tas").send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["tas"][0]["component_id"], json!([TA_HEX]));
    }
}
