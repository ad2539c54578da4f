//! The RATS Verifier as an HTTP service, and its client for relying parties (a TAM).
//!
//! The appraisal itself is `teep_attest::Verifier`; this crate adds only transport, the
//! clock and the challenge store. The API (background-check model, RFC 9334 §5.2):
//!
//! | request | body | response |
//! |---|---|---|
//! | `POST /challenge` | none | `200`, `application/json`: `{"nonce": "<hex>", "expires_in": <seconds>}` |
//! | `POST /verify` | `application/eat+cwt`: the Evidence (COSE_Sign1 of a TEEP EAT) | `200`, [`EAR_MEDIA_TYPE`]: the EAR, COSE_Sign1 by the Verifier key |
//!
//! `/verify` answers `200` with a signed EAR for every Evidence it could read the bytes of,
//! also a contraindicated one: the EAR says what failed. Other answers: `415` when the
//! request's content type is not `application/eat+cwt`, `413` when the body exceeds
//! [`MAX_EVIDENCE`], `503` when too many challenges are outstanding, `500` when the Verifier
//! cannot sign. The nonce in the Evidence must be a challenge from `/challenge`, unexpired
//! and not used before.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use teep_attest::{
    ChallengeError, Challenges, Context, EVIDENCE_FORMAT, Freshness, FreshnessError, Outcome,
    Redeem, Verifier, sign_ear,
};
use teep_cose::{CryptoProvider, Signer};

/// Media type of the signed EAR (RFC 9782 with the EAR profile).
pub const EAR_MEDIA_TYPE: &str =
    "application/eat+cwt; eat_profile=\"tag:github.com,2023:veraison/ear\"";

/// Largest Evidence accepted: a TEEP EAT with a few hundred manifests fits many times over.
pub const MAX_EVIDENCE: usize = 64 * 1024;

/// The Verifier service: appraiser, signing key and outstanding challenges.
pub struct Service {
    verifier: Verifier,
    signer: Box<dyn Signer>,
    provider: &'static dyn CryptoProvider,
    challenges: Mutex<Challenges>,
}

/// The host clock in seconds since the Unix epoch (0 before it): the appraisal time of
/// the Service, and of `teep attest verify`.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Service {
    /// A service appraising with `verifier` and signing EARs with `signer`.
    pub fn new(
        verifier: Verifier,
        signer: Box<dyn Signer>,
        provider: &'static dyn CryptoProvider,
    ) -> Self {
        let lifetime = verifier.policy().freshness_window;
        Self {
            verifier,
            signer,
            provider,
            challenges: Mutex::new(Challenges::new(lifetime)),
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

    /// Appraises Evidence whose nonce must be one of this service's challenges, and signs the
    /// EAR. Also what `POST /verify` does.
    pub fn appraise(&self, evidence: &[u8]) -> (Outcome, Result<Vec<u8>, teep_cose::CoseError>) {
        let mut challenges = SharedChallenges(&self.challenges);
        let mut cx = Context {
            now: now(),
            freshness: Freshness::Issued(&mut challenges),
            teep_key: None,
        };
        let outcome = self.verifier.appraise(self.provider, evidence, &mut cx);
        let signed = sign_ear(&outcome.ear, self.signer.as_ref());
        (outcome, signed)
    }
}

/// The service's challenge store, locked only while one challenge is redeemed.
struct SharedChallenges<'a>(&'a Mutex<Challenges>);

impl Redeem for SharedChallenges<'_> {
    fn redeem(&mut self, nonce: &[u8], now: u64) -> Result<(), FreshnessError> {
        lock(self.0).redeem(nonce, now)
    }
}

/// A panic elsewhere cannot leave the challenge map half-updated (each operation is one
/// insert or remove), so a poisoned lock is safe to keep using.
fn lock(m: &Mutex<Challenges>) -> MutexGuard<'_, Challenges> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn challenge(State(service): State<Arc<Service>>) -> Response {
    let issued = lock(&service.challenges).issue(service.provider, now());
    match issued {
        Ok(nonce) => Json(serde_json::json!({
            "nonce": hex::encode(nonce),
            "expires_in": service.verifier.policy().freshness_window,
        }))
        .into_response(),
        Err(ChallengeError::Busy) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a challenge");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn verify(State(service): State<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|c| c.trim().eq_ignore_ascii_case(EVIDENCE_FORMAT)) {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let (outcome, signed) = service.appraise(&body);
    tracing::info!(
        status = outcome.status().name(),
        findings = ?outcome.findings,
        "appraised Evidence"
    );
    match signed {
        Ok(ear) => ([(header::CONTENT_TYPE, EAR_MEDIA_TYPE)], ear).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the EAR");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serves the API on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
) -> std::io::Result<()> {
    axum::serve(listener, service.router()).await
}

/// Why the client could not get an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Transport failure.
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The Verifier answered with an error status.
    #[error("Verifier answered {0}")]
    Status(u16),
    /// The answer is not what the API documents.
    #[error("unexpected answer from the Verifier")]
    BadAnswer,
}

/// A relying party's client of the Verifier API.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the Verifier at `base` (e.g. `http://127.0.0.1:8400`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Asks for a challenge to put in a QueryRequest.
    pub async fn challenge(&self) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .http
            .post(format!("{}/challenge", self.base))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(ClientError::Status(resp.status().as_u16()));
        }
        let body: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await?).map_err(|_| ClientError::BadAnswer)?;
        body.get("nonce")
            .and_then(serde_json::Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .ok_or(ClientError::BadAnswer)
    }

    /// Sends Evidence; returns the signed EAR (check it with `teep_attest::verify_ear`).
    pub async fn verify(&self, evidence: &[u8]) -> Result<Vec<u8>, ClientError> {
        let resp = self
            .http
            .post(format!("{}/verify", self.base))
            .header(header::CONTENT_TYPE, EVIDENCE_FORMAT)
            .body(evidence.to_vec())
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(ClientError::Status(resp.status().as_u16()));
        }
        Ok(resp.bytes().await?.to_vec())
    }
}
