//! The HTTP service.

mod auth;
mod store;

use std::{
    num::{NonZeroU32, NonZeroUsize},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::post,
};
use teep_attest::{EVIDENCE_FORMAT, SigningVerifier};

pub use auth::{RelyingParties, TokensError, new_tokens_file};
pub use store::RateLimit;
use store::{Limiter, Outstanding};

use crate::{EAR_MEDIA_TYPE, MAX_EVIDENCE, now};

/// Default bound on the challenges one relying party has outstanding: a TAM attesting
/// devices for the whole freshness window at the default rate stays well within it.
pub const DEFAULT_MAX_CHALLENGES: NonZeroUsize = nonzero_usize(4096);
/// Default average requests a second per relying party.
pub const DEFAULT_RATE: NonZeroU32 = nonzero_u32(100);
/// Default burst per relying party.
pub const DEFAULT_BURST: NonZeroU32 = nonzero_u32(200);

const fn nonzero_usize(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

const fn nonzero_u32(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

/// Who may use the service, and how much.
#[derive(Debug)]
pub struct Config {
    /// The relying parties and their tokens.
    pub relying_parties: RelyingParties,
    /// Challenges one relying party may have outstanding; issuing more evicts its oldest.
    pub max_challenges: NonZeroUsize,
    /// Requests (`/challenge` and `/verify` together) per relying party.
    pub rate: RateLimit,
}

impl Config {
    /// `relying_parties` with the default bounds: [`DEFAULT_MAX_CHALLENGES`],
    /// [`DEFAULT_RATE`], [`DEFAULT_BURST`].
    pub fn new(relying_parties: RelyingParties) -> Self {
        Self {
            relying_parties,
            max_challenges: DEFAULT_MAX_CHALLENGES,
            rate: RateLimit::per_second(DEFAULT_RATE, DEFAULT_BURST),
        }
    }
}

/// One relying party's state.
struct Party {
    challenges: Mutex<Outstanding>,
    limiter: Mutex<Limiter>,
}

/// The Verifier service: appraiser with its signing key, and per relying party the
/// outstanding challenges and the rate limiter.
pub struct Service {
    verifier: SigningVerifier,
    relying_parties: RelyingParties,
    parties: Vec<Party>,
    rate: RateLimit,
}

/// Each operation on a party's state is one insert, remove or update, so a panic elsewhere
/// cannot leave it half-changed and a poisoned lock is safe to keep using.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Service {
    /// A service appraising with `verifier` for the relying parties of `config`.
    pub fn new(verifier: SigningVerifier, config: Config) -> Self {
        let lifetime = verifier.verifier().policy().freshness_window;
        let parties = (0..config.relying_parties.len())
            .map(|_| Party {
                challenges: Mutex::new(Outstanding::new(lifetime, config.max_challenges)),
                limiter: Mutex::new(Limiter::default()),
            })
            .collect();
        Self {
            verifier,
            relying_parties: config.relying_parties,
            parties,
            rate: config.rate,
        }
    }

    /// The HTTP routes.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/challenge", post(challenge))
            .route("/verify", post(verify))
            .layer(DefaultBodyLimit::max(MAX_EVIDENCE))
            .with_state(self)
    }
}

/// An authenticated relying party within its rate: its index and state.
struct Caller {
    index: usize,
}

impl Caller {
    fn party<'a>(&self, service: &'a Service) -> Option<&'a Party> {
        service.parties.get(self.index)
    }
}

/// `401` with the RFC 6750 challenge; says nothing about which check failed.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"teep-verifier\"")],
    )
        .into_response()
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

/// The token of `Authorization: Bearer TOKEN` (scheme case-insensitive, RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = Response;

    /// Runs before the body is read: an unauthenticated or over-rate request changes no
    /// state and costs one SHA-256.
    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, Response> {
        let Some(index) =
            bearer(&parts.headers).and_then(|t| service.relying_parties.authenticate(t))
        else {
            tracing::debug!("refused a request without a known token");
            return Err(unauthorized());
        };
        let caller = Self { index };
        let party = caller.party(service).ok_or_else(unauthorized)?;
        if let Err(wait) = lock(&party.limiter).admit(&service.rate, Instant::now()) {
            tracing::debug!(
                relying_party = service.relying_parties.name(index),
                "rate limited"
            );
            return Err(too_many(wait));
        }
        Ok(caller)
    }
}

fn internal_error() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

async fn challenge(State(service): State<Arc<Service>>, caller: Caller) -> Response {
    let Some(party) = caller.party(&service) else {
        return internal_error();
    };
    let issued = lock(&party.challenges).issue(service.verifier.provider(), now());
    match issued {
        Ok(nonce) => Json(serde_json::json!({
            "nonce": hex::encode(nonce),
            "expires_in": service.verifier.verifier().policy().freshness_window,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a challenge");
            internal_error()
        }
    }
}

async fn verify(
    State(service): State<Arc<Service>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|c| c.trim().eq_ignore_ascii_case(EVIDENCE_FORMAT)) {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Some(party) = caller.party(&service) else {
        return internal_error();
    };
    let appraised = service
        .verifier
        .appraise(&body, now(), &mut &party.challenges);
    tracing::info!(
        relying_party = service.relying_parties.name(caller.index),
        status = appraised.outcome.status().name(),
        findings = ?appraised.outcome.findings,
        "appraised Evidence"
    );
    match appraised.signed {
        Ok(ear) => ([(header::CONTENT_TYPE, EAR_MEDIA_TYPE)], ear).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the EAR");
            internal_error()
        }
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
) -> std::io::Result<()> {
    serve_until(listener, service, core::future::pending()).await
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in
/// flight finish (a process's SIGTERM: no appraisal is cut off half-way).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, service.router())
        .with_graceful_shutdown(shutdown)
        .await
}
