//! TEEP over HTTP, the TAM side (draft-ietf-teep-otrp-over-http-15 §6; digest
//! `shared/spec/teep-http.md`): one resource that takes POSTs, an empty body opening a
//! session and any other body being a TEEP message for [`driver::drive`].
//!
//! Pinned choices:
//! * only POST (405 with `Allow: POST`); the resource is [`ServerConfig::path`], any other
//!   path is 404; redirects are never sent;
//! * older Agents (pre-26 numbering) have a resource of their own, served by a second
//!   engine ([`Server::with_pre26`]): each engine parses with its own numbering only, so a
//!   message posted to the other generation's path is dropped (204) like any malformed one;
//! * `Accept` must admit `application/teep+cbor` (missing or excluding: 406); a non-empty
//!   body must come with that `Content-Type` (else 415), parameters allowed; an empty body
//!   needs none;
//! * a reply is 200 with the message; "nothing more" is 204; a message the engine drops
//!   (malformed, unknown or used token, bad signature, ...) is also 204, so a client learns
//!   nothing about which check failed; only a TAM-side failure (store, Verifier, signing,
//!   randomness) is 500;
//! * every response, errors included, carries `X-Content-Type-Options: nosniff`,
//!   `Content-Security-Policy: default-src 'none'` and `Referrer-Policy: no-referrer`, and
//!   no `Cache-Control` (otrp-over-http §5: MUST NOT be used);
//! * limits before the engine sees a byte: a token bucket per client IP (429 with
//!   `Retry-After`), a body limit (413), a timeout on the request head (the connection is
//!   closed) and on the body (408);
//! * HTTPS when [`ServerConfig::tls`] is set ([`tls_config`]: rustls, PEM files), else plain
//!   HTTP (otrp-over-http §7 allows it: the protocol's messages are signed end to end); the
//!   TLS handshake has [`ServerConfig::header_timeout`] to finish, and the request head
//!   then has the same time again; a client that does not speak TLS to a TLS port gets the
//!   connection closed, never an HTTP answer.

mod limit;
mod media;
mod tls;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use teep_attest::Appraiser;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt as _;

pub use limit::RateLimit;
pub use media::TEEP_CBOR;
pub use tls::{TlsError, tls_config};

use crate::driver;
use crate::engine::{Context, ProviderRandom, Tam};
use crate::error::{Dropped, Handled};
use crate::messages::{Exchange, MessageLog};
use crate::metrics::Metrics;
use crate::store::Store;
use limit::Limiter;

/// Default body limit: an Update carrying a 1 MiB Trusted Component, with room for its
/// manifest, signatures and a few dependencies.
pub const DEFAULT_BODY_LIMIT: usize = 4 << 20;

/// Limits and the resource path.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The TAM URI's path.
    pub path: String,
    /// Largest body accepted (413 above).
    pub body_limit: usize,
    /// Time a client has to send the request head; the connection is closed after it.
    pub header_timeout: Duration,
    /// Time a client has to send the body once the head is in (408 after it).
    pub body_timeout: Duration,
    /// Requests per client IP.
    pub rate: RateLimit,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    /// HTTPS with this configuration (see [`tls_config`]); `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            path: "/tam".into(),
            body_limit: DEFAULT_BODY_LIMIT,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            rate: RateLimit::default(),
            shutdown_grace: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// The engine with its store and Verifier, and the HTTP limits.
pub struct Server<S, A> {
    tam: Tam,
    /// The engine for older Agents and its path.
    pre26: Option<(String, Tam)>,
    store: S,
    appraiser: A,
    config: ServerConfig,
    limiter: Mutex<Limiter>,
    metrics: Option<Arc<Metrics>>,
    messages: Option<Arc<dyn MessageLog>>,
}

/// The client's address, from the accepted connection.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl<S, A> Server<S, A>
where
    S: Store + 'static,
    A: Appraiser + Send + Sync + 'static,
{
    /// A server for `tam` on `store`, asking `appraiser` for challenges and EARs.
    pub fn new(tam: Tam, store: S, appraiser: A, config: ServerConfig) -> Self {
        Self {
            tam,
            pre26: None,
            store,
            appraiser,
            config,
            limiter: Mutex::new(Limiter::default()),
            metrics: None,
            messages: None,
        }
    }

    /// Records every message received and sent into `log` (the console's sessions).
    #[must_use]
    pub fn with_messages(mut self, log: Arc<dyn MessageLog>) -> Self {
        self.messages = Some(log);
        self
    }

    /// Records every request the engine handles into `metrics` (served by the admin API).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Also serves older Agents on `path` with `tam` (an engine with
    /// [`teep_proto::Numbering::Pre26`] and the suites those Agents offer), sharing the
    /// store, Verifier and limits.
    #[must_use]
    pub fn with_pre26(mut self, path: String, tam: Tam) -> Self {
        self.pre26 = Some((path, tam));
        self
    }

    /// The engine for `generation`'s path.
    fn engine(&self, generation: Generation) -> &Tam {
        match (generation, &self.pre26) {
            (Generation::Pre26, Some((_, tam))) => tam,
            _ => &self.tam,
        }
    }

    /// The store (an admin shell or a test reads it).
    pub fn store(&self) -> &S {
        &self.store
    }

    fn router(self: Arc<Self>) -> Router {
        let path = self.config.path.clone();
        let mut router = Router::new().route(&path, axum::routing::any(teep::<S, A>));
        if let Some((pre26, _)) = &self.pre26 {
            router = router.route(pre26, axum::routing::any(teep_pre26::<S, A>));
        }
        router
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::map_response(security_headers))
            .with_state(self)
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting and lets the
    /// requests in flight finish (up to [`ServerConfig::shutdown_grace`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let grace = self.config.shutdown_grace;
        let handshake_timeout = self.config.header_timeout;
        let tls = self.config.tls.clone().map(TlsAcceptor::from);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.config.header_timeout);
        let router = self.router();
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Taken before the handshake, so that shutdown also waits for (at most
            // `handshake_timeout` of) a handshake in progress.
            let watcher = graceful.watcher();
            let (http, router, tls) = (http.clone(), router.clone(), tls.clone());
            tokio::spawn(async move {
                let Some(acceptor) = tls else {
                    return connection(http, watcher, stream, router, peer).await;
                };
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => connection(http, watcher, stream, router, peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => tracing::warn!("requests still in flight at shutdown were cut off"),
        }
    }
}

/// Serves HTTP/1.1 on one accepted connection (plain or TLS) until it ends or shutdown
/// closes it.
async fn connection<I>(
    http: hyper::server::conn::http1::Builder,
    watcher: Watcher,
    io: I,
    router: Router,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(Peer(peer));
        router.clone().oneshot(request)
    });
    if let Err(e) = watcher
        .watch(http.serve_connection(TokioIo::new(io), service))
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Which engine a resource feeds.
#[derive(Clone, Copy, Debug)]
enum Generation {
    /// The `-26` numbering ([`ServerConfig::path`]).
    Current,
    /// Older Agents ([`Server::with_pre26`]).
    Pre26,
}

/// The TEEP resource.
async fn teep<S, A>(State(server): State<Arc<Server<S, A>>>, request: Request) -> Response
where
    S: Store + 'static,
    A: Appraiser + Send + Sync + 'static,
{
    resource(server, request, Generation::Current).await
}

/// The resource for older Agents.
async fn teep_pre26<S, A>(State(server): State<Arc<Server<S, A>>>, request: Request) -> Response
where
    S: Store + 'static,
    A: Appraiser + Send + Sync + 'static,
{
    resource(server, request, Generation::Pre26).await
}

async fn resource<S, A>(
    server: Arc<Server<S, A>>,
    request: Request,
    generation: Generation,
) -> Response
where
    S: Store + 'static,
    A: Appraiser + Send + Sync + 'static,
{
    let ip = request
        .extensions()
        .get::<Peer>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip());
    let admitted = server
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .admit(&server.config.rate, ip, Instant::now());
    if let Err(wait) = admitted {
        tracing::debug!(%ip, "rate limited");
        return too_many(wait);
    }
    if request.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    let (parts, body) = request.into_parts();
    if !media::accepts_teep_cbor(&parts.headers) {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    if content_length(&parts.headers).is_some_and(|n| n > server.config.body_limit) {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let limited = Limited::new(body, server.config.body_limit);
    let body = match tokio::time::timeout(server.config.body_timeout, limited.collect()).await {
        Err(_) => return StatusCode::REQUEST_TIMEOUT.into_response(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        Ok(Err(_)) => return StatusCode::BAD_REQUEST.into_response(),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let typed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| media::is_teep_cbor(v.as_bytes()));
    if !body.is_empty() && !typed {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let started = Instant::now();
    let result = handle(server.clone(), body, generation).await;
    if let Some(metrics) = &server.metrics {
        metrics.record(result.as_ref(), started.elapsed());
    }
    respond(result)
}

/// Runs the engine on `body` in a task of its own (the engine's future is `Send`: its
/// [`Context`] borrows a `dyn Random`, which is `Send`), so that a failing engine task
/// becomes a 500 rather than a dropped connection.
async fn handle<S, A>(
    server: Arc<Server<S, A>>,
    body: axum::body::Bytes,
    generation: Generation,
) -> Option<Result<Handled, Dropped>>
where
    S: Store + 'static,
    A: Appraiser + Send + Sync + 'static,
{
    let job = tokio::spawn(async move {
        let tam = server.engine(generation);
        let mut rng = ProviderRandom(tam.config().provider);
        let mut cx = Context {
            now: unix_now(),
            rng: &mut rng,
        };
        let (device, result) =
            driver::drive_with_device(tam, &server.store, &server.appraiser, &body, None, &mut cx)
                .await;
        if let Some(log) = &server.messages {
            let exchange = Exchange {
                request: &body,
                reply: result.as_ref().ok().and_then(|h| h.reply.as_deref()),
                device,
                dropped: result.as_ref().err().map(ToString::to_string),
                at: cx.now,
                numbering: tam.config().numbering,
            };
            // The console's record only: the exchange stands (it is committed) even if
            // its record cannot be written.
            if let Err(e) = log.record(&exchange).await {
                tracing::warn!(error = %e, "the message log could not record an exchange");
            }
        }
        result
    });
    job.await.ok()
}

/// The HTTP answer to the engine's result (`None`: the engine's task failed).
fn respond(result: Option<Result<Handled, Dropped>>) -> Response {
    match result {
        Some(Ok(Handled {
            reply: Some(reply), ..
        })) => ([(header::CONTENT_TYPE, TEEP_CBOR)], reply).into_response(),
        Some(Ok(Handled { reply: None, .. })) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(dropped)) if tam_failed(&dropped) => {
            tracing::error!(error = %dropped, "the TAM could not answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Some(Err(_)) => StatusCode::NO_CONTENT.into_response(),
        None => {
            tracing::error!("the engine's task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether a drop is the TAM's own failure (5xx) rather than a message it ignores (204).
/// Exhaustive, so that a new reason must be placed.
fn tam_failed(dropped: &Dropped) -> bool {
    match dropped {
        Dropped::Store(_)
        | Dropped::Verifier(_)
        | Dropped::Random(_)
        | Dropped::Sign(_)
        | Dropped::NoSignerForSuite
        | Dropped::ShellMismatch => true,
        Dropped::Malformed(_)
        | Dropped::NoToken
        | Dropped::UnknownToken
        | Dropped::TokenReused
        | Dropped::TokenExpired
        | Dropped::WrongState { .. }
        | Dropped::UnknownAgent
        | Dropped::BadSignature(_)
        | Dropped::WrongDevice(_)
        | Dropped::NotSessionDevice
        | Dropped::NoCnfKey
        | Dropped::NoEncryptionKey
        | Dropped::EvidenceDecryption(_)
        | Dropped::Attestation(_)
        | Dropped::Revoked
        | Dropped::Report(_)
        | Dropped::ReportNonce
        | Dropped::ReportForUnsentManifest
        | Dropped::NegotiationFailed
        | Dropped::NoTamAttestation
        | Dropped::TamAttestationRefused
        | Dropped::Conflict => false,
    }
}

/// The headers otrp-over-http §5 asks of every response with content; sent on all of them.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `429` with `Retry-After` in whole seconds, rounded up.
fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, HeaderValue::from(secs.max(1)))],
    )
        .into_response()
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
