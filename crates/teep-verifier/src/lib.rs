//! The RATS Verifier as an HTTP service (feature `server`), and its client for relying
//! parties such as a TAM (feature `client`); both are default features.
//!
//! The appraisal itself is `teep_attest::SigningVerifier`; this crate adds transport, the
//! clock, relying-party authentication, per-party challenge stores and rate limits. The API
//! (background-check model, RFC 9334 §5.2), every request with
//! `Authorization: Bearer <relying-party token>`:
//!
//! | request | body | response |
//! |---|---|---|
//! | `POST /challenge` | none | `200`, `application/json`: `{"nonce": "<hex>", "expires_in": <seconds>}` |
//! | `POST /verify` | `application/eat+cwt`: the Evidence (COSE_Sign1 of a TEEP EAT) | `200`, [`EAR_MEDIA_TYPE`]: the EAR, COSE_Sign1 by the Verifier key |
//!
//! `/verify` answers `200` with a signed EAR for every Evidence it could read the bytes of,
//! also a contraindicated one: the EAR says what failed. Other answers: `401` without a
//! known token (nothing is issued or redeemed), `429` with `Retry-After` when the relying
//! party exceeds its rate, `415` when the request's content type is not
//! `application/eat+cwt`, `413` when the body exceeds [`MAX_EVIDENCE`], `500` when the
//! Verifier cannot sign or has no randomness. The nonce in the Evidence must be a challenge
//! issued to the same relying party, unexpired and not used before; each relying party
//! holds at most a bounded number of outstanding challenges, the oldest evicted first, so
//! no caller can exhaust another's.

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};
/// The HTTP client [`Client::new`] takes and [`ClientError::Http`] carries: the caller builds
/// it (timeouts, TLS roots and features), so reqwest is a deliberate public dependency. Name
/// it through this re-export to build the client with the same version.
#[cfg(feature = "client")]
pub use reqwest;
#[cfg(feature = "server")]
pub use server::{
    Config, DEFAULT_BURST, DEFAULT_MAX_CHALLENGES, DEFAULT_RATE, RateLimit, RelyingParties,
    Service, TokensError, new_tokens_file, serve, serve_until,
};
pub use teep_attest::appraiser::{Appraiser, Challenge};
/// The web framework of [`Service::router`] (to mount the API in a larger `axum` app) and
/// the runtime of [`serve`] (its `tokio::net::TcpListener`): deliberate public dependencies,
/// re-exported so that callers use the same versions.
#[cfg(feature = "server")]
pub use {axum, tokio};

/// Media type of the signed EAR (RFC 9782 with the EAR profile).
pub const EAR_MEDIA_TYPE: &str =
    "application/eat+cwt; eat_profile=\"tag:github.com,2023:veraison/ear\"";

/// Largest Evidence accepted: a TEEP EAT with a few hundred manifests fits many times over.
/// Also the largest answer the client reads.
pub const MAX_EVIDENCE: usize = 64 * 1024;

/// The host clock in seconds since the Unix epoch (0 before it): the appraisal time of
/// the Service, and of `teep attest verify`.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The service is shared by every connection task (`Arc<Service>` on a multi-threaded
/// runtime) and the client is held by the TAM across `.await`: they and their errors must
/// stay `Send + Sync`, so losing it fails the build here rather than in the caller's code.
#[cfg(any(feature = "server", feature = "client"))]
const _: fn() = || {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    #[cfg(feature = "server")]
    {
        send_sync::<Service>();
        send_sync::<Config>();
        send_sync::<RelyingParties>();
        send_sync::<RateLimit>();
        send_sync::<TokensError>();
    }
    #[cfg(feature = "client")]
    {
        send_sync::<Client>();
        send_sync::<ClientError>();
    }
};
