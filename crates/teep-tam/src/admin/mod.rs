//! The TAM's admin API: JSON over HTTP on its own listener (loopback by default), for the
//! operator to upload and revoke TCs, set policy, revoke devices, manage the TC-signer
//! anchors, read the audit log and scrape Prometheus metrics.
//!
//! Pinned choices:
//! * every route, `/metrics` and `/admin/openapi.json` included, needs
//!   `Authorization: Bearer TOKEN`; the token is compared in constant time (SHA-256 of both
//!   sides, then a constant-time equality, so neither content nor length leaks);
//! * every call, refused ones included, is one audit-log line (`admin METHOD PATH ->
//!   STATUS`, with `(unauthenticated)` for a refused token), written after the handler,
//!   with a detail saying what the call affected (the handler's [`AuditDetail`]) or why it
//!   was refused (`refused CODE: MESSAGE`); never a token, a key's secret or a body's bytes;
//! * errors are JSON `{"error": CODE, "message": TEXT}` ([`ApiError`]); a refused upload
//!   or operation changes nothing;
//! * component IDs are written in their one canonical text form (`ComponentId`'s
//!   `Display`/`FromStr`: `/`-prefixed percent-encoded segments, docs/wire-format.md); the
//!   empty string is the ID of no segments (the scope of everything);
//! * TC uploads are `application/cbor` or `application/suit-envelope+cose` bodies of at
//!   most [`crate::http::DEFAULT_BODY_LIMIT`]; the envelope must verify against a stored
//!   TC-signer anchor whose scope covers its manifest component ID, and the repository
//!   rules of [`crate::store::check_release`] hold.
//! * The OpenAPI document is generated from the handlers (`utoipa`); the router is built
//!   only from the documented handlers, so the two cannot drift apart.

pub mod console;
mod handlers;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;
use teep_cose::CryptoProvider;
use teep_proto::ComponentId;
use tokio::net::TcpListener;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::messages::{MemoryMessageLog, MessageLog};
use crate::metrics::Metrics;
use crate::store::{AdminError, AdminStore, AuditEntry};

pub use handlers::{
    AuditLine, ClassBody, DEVICES_PAGE, DEVICES_PAGE_MAX, DeviceInfo, DeviceRef,
    DeviceRegistration, PolicyBody, PolicyList, ReportInfo, SignerBody, TcInfo, TcVersion,
    parse_ca_certificate, parse_teep_key,
};

/// The admin listener's default address: loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8481";

/// Longest request path written to the audit log (a longer one is cut).
const AUDIT_PATH_MAX: usize = 200;

/// Longest audit detail (a longer one is cut).
const AUDIT_DETAIL_MAX: usize = 500;

/// What an admin call affected, as its audit line's detail: a handler puts it in its
/// response's extensions, the guard writes it (and keeps it off the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDetail(pub String);

/// Media types a TC upload may carry.
pub const TC_MEDIA_TYPES: [&str; 2] = ["application/cbor", "application/suit-envelope+cose"];

/// What the admin handlers share: the store, the token, the metrics to expose and the
/// crypto provider envelopes are verified with.
pub struct Admin {
    store: Arc<dyn AdminStore>,
    token_digest: [u8; 32],
    metrics: Arc<Metrics>,
    provider: &'static dyn CryptoProvider,
    messages: Arc<dyn MessageLog>,
}

impl Admin {
    /// The admin state over `store`, accepting `token` as the bearer token.
    pub fn new(
        store: Arc<dyn AdminStore>,
        token: &str,
        metrics: Arc<Metrics>,
        provider: &'static dyn CryptoProvider,
    ) -> Self {
        Self {
            store,
            token_digest: provider.sha256(token.as_bytes()),
            metrics,
            provider,
            messages: Arc::new(MemoryMessageLog::new()),
        }
    }

    /// Shows the sessions `log` holds (the one the TEEP server records into; without it
    /// the session endpoints list nothing).
    #[must_use]
    pub fn with_messages(mut self, log: Arc<dyn MessageLog>) -> Self {
        self.messages = log;
        self
    }

    /// Whether `offered` is the token, in time independent of both.
    fn token_ok(&self, offered: &[u8]) -> bool {
        let digest = self.provider.sha256(offered);
        bool::from(digest.ct_eq(&self.token_digest))
    }
}

/// The OpenAPI document's frame (the paths come from the handlers).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "teep TAM admin API", description = "Operator API of the TEEP TAM"),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Declares the bearer-token scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router and the OpenAPI document generated from the same handlers.
fn documented() -> (Router<Arc<Admin>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::upload_tc, handlers::list_tcs))
        .routes(routes!(handlers::revoke_tc))
        .routes(routes!(handlers::show_policy))
        .routes(routes!(handlers::set_class_policy))
        .routes(routes!(handlers::set_device_policy))
        .routes(routes!(handlers::list_devices, handlers::register_device))
        .routes(routes!(handlers::show_device))
        .routes(routes!(handlers::revoke_device))
        .routes(routes!(handlers::set_device_class))
        .routes(routes!(handlers::device_sessions))
        .routes(routes!(handlers::device_attestations))
        .routes(routes!(handlers::latest_sessions))
        .routes(routes!(handlers::list_signers, handlers::add_signer))
        .routes(routes!(handlers::remove_signer))
        .routes(routes!(handlers::list_audit))
        .routes(routes!(handlers::metrics))
        .routes(routes!(handlers::openapi))
        .split_for_parts()
}

/// The OpenAPI document of the admin API (what `/admin/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().1
}

/// The admin router: authentication and audit around every route, JSON 404 elsewhere.
///
/// The console's assets ([`console`]) are served beside it without a token; every
/// response carries the console's security headers.
pub fn router(admin: Arc<Admin>) -> Router {
    let (routes, doc) = documented();
    let api = routes
        .fallback(|| async { ApiError::NotFound("route").into_response() })
        .layer(axum::Extension(Arc::new(doc)))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::http::DEFAULT_BODY_LIMIT,
        ))
        .layer(axum::middleware::from_fn_with_state(admin.clone(), guard))
        .with_state(admin);
    console::router()
        .merge(api)
        .layer(axum::middleware::map_response(console::security_headers))
}

/// Serves the admin API on `listener` until `shutdown` completes.
///
/// # Errors
/// The listener failed.
pub async fn serve(
    admin: Arc<Admin>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(admin))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Authenticates the call, runs it if allowed, and writes its audit line.
async fn guard(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(AUDIT_PATH_MAX).collect();
    let authorised = bearer(request.headers()).is_some_and(|t| admin.token_ok(t));
    let cross_site = console::cross_site(&method, request.headers());
    let mut response = if authorised && cross_site {
        ApiError::CrossSite.into_response()
    } else if authorised {
        next.run(request).await
    } else {
        ApiError::Unauthorized.into_response()
    };
    let status = response.status().as_u16();
    let refused = if authorised { "" } else { " (unauthenticated)" };
    let detail = response
        .extensions_mut()
        .remove::<AuditDetail>()
        .map(|d| d.0.chars().take(AUDIT_DETAIL_MAX).collect::<String>())
        // A body axum's extractors refused (not JSON, a missing field) never reached a
        // handler: its status is the reason.
        .or_else(|| (status >= 400).then(|| format!("refused malformed request (HTTP {status})")));
    let entry = AuditEntry {
        at: unix_now(),
        device: None,
        event: format!("admin {method} {path} -> {status}{refused}"),
        detail,
    };
    tracing::info!(%method, %path, status, authorised, detail = entry.detail.as_deref().unwrap_or(""), "admin call");
    if let Err(e) = admin.store.append_audit(&entry).await {
        tracing::error!(error = %e, event = %entry.event, "audit log write failed");
    }
    response
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// An admin API error, sent as `{"error": CODE, "message": TEXT}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No token, or not the token (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A state-changing call from another site (a browser's `Sec-Fetch-Site` or `Origin`
    /// says so; 403): nothing changed.
    #[error("cross-site request refused")]
    CrossSite,
    /// The request is not understood (400).
    #[error("{0}")]
    BadRequest(String),
    /// A TC upload with another media type (415).
    #[error("a TC upload must be application/cbor or application/suit-envelope+cose")]
    MediaType,
    /// The envelope does not verify against the TC-signer anchors, or is malformed (422).
    #[error("envelope refused: {0}")]
    Envelope(String),
    /// The signer's anchor does not cover the manifest component ID (422).
    #[error("signer {0} may not write this manifest component ID")]
    OutOfScope(String),
    /// A repository rule or operation refused (409 / 404).
    #[error(transparent)]
    Store(#[from] AdminError),
    /// Nothing of that name (404).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// `error`, about `what` (for the audit detail: which TC, device or signer).
    #[error("{error}")]
    About {
        /// What the refused call was about.
        what: String,
        /// Why it was refused.
        error: Box<Self>,
    },
}

impl ApiError {
    /// This error, saying what the refused call was about.
    #[must_use]
    pub fn about(self, what: impl Into<String>) -> Self {
        Self::About {
            what: what.into(),
            error: Box::new(self),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::About { error, .. } => error.status_and_code(),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::CrossSite => (StatusCode::FORBIDDEN, "cross_site"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::MediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "media_type"),
            Self::Envelope(_) => (StatusCode::UNPROCESSABLE_ENTITY, "envelope_rejected"),
            Self::OutOfScope(_) => (StatusCode::UNPROCESSABLE_ENTITY, "out_of_scope"),
            Self::NotFound(_) | Self::Store(AdminError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Self::Store(AdminError::Rollback { .. }) => (StatusCode::CONFLICT, "rollback"),
            Self::Store(AdminError::SignerChanged) => (StatusCode::CONFLICT, "signer_changed"),
            Self::Store(AdminError::TcRevoked) => (StatusCode::CONFLICT, "tc_revoked"),
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "admin call failed");
        }
        let message = self.to_string();
        let detail = match &self {
            Self::About { what, .. } => format!("refused {code} ({what}): {message}"),
            _ => format!("refused {code}: {message}"),
        };
        let body = serde_json::json!({ "error": code, "message": message });
        (
            status,
            axum::Extension(AuditDetail(detail)),
            axum::Json(body),
        )
            .into_response()
    }
}

/// Parses a component ID in its canonical text form (`ComponentId`'s `FromStr`,
/// docs/wire-format.md; the empty string: no segments).
///
/// # Errors
/// The text is not the canonical form of any component ID.
pub fn parse_component_id(text: &str) -> Result<ComponentId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::BadRequest(format!("component ID {text:?}: {e}")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_take_the_canonical_text_form() {
        let id = ComponentId(vec![b"TEEP".to_vec(), vec![], vec![0xff]]);
        let text = id.to_string();
        assert_eq!(text, "/TEEP//%FF");
        assert_eq!(parse_component_id(&text).unwrap(), id);
        assert_eq!(parse_component_id("").unwrap(), ComponentId(vec![]));
        assert!(parse_component_id("zz").is_err());
        assert!(parse_component_id("/%ff").is_err(), "one spelling per ID");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bear".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
