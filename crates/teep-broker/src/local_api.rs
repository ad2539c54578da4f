//! The local API through which apps ask for, drop, list and invoke TAs: JSON over HTTP,
//! served only on a loopback address or a Unix socket (see `docs/broker.md`).

use std::io;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::agent::{Agent, AgentError, ComponentId, TaInfo, TaRequest};
use crate::broker::{Broker, BrokerError, Outcome, PolicyReport};

/// Largest request body (an invoke input of 3 MiB, base64-encoded, fits).
pub const MAX_LOCAL_REQUEST: usize = 4 * 1024 * 1024;

/// The routes, for serving on a listener of the caller's choice.
pub fn router<A: Agent + 'static>(broker: Arc<Broker<A>>) -> Router {
    Router::new()
        .route("/v1/tas", get(list::<A>))
        .route("/v1/tas/request", post(request::<A>))
        .route("/v1/tas/unrequest", post(unrequest::<A>))
        .route("/v1/tas/invoke", post(invoke::<A>))
        .route("/v1/policy-check", post(policy_check::<A>))
        .layer(DefaultBodyLimit::max(MAX_LOCAL_REQUEST))
        .with_state(broker)
}

/// Serves the local API on a TCP listener, which must be bound to a loopback address:
/// the API has no authentication of its own, so it must not be reachable from the network.
///
/// # Errors
/// `InvalidInput` for a non-loopback listener; otherwise the server's I/O errors.
pub async fn serve_loopback<A: Agent + 'static>(
    broker: Arc<Broker<A>>,
    listener: tokio::net::TcpListener,
) -> io::Result<()> {
    serve_loopback_until(broker, listener, std::future::pending()).await
}

/// [`serve_loopback`] until `shutdown` completes; requests in flight are finished first.
///
/// # Errors
/// As [`serve_loopback`].
pub async fn serve_loopback_until<A: Agent + 'static>(
    broker: Arc<Broker<A>>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("local API must listen on loopback, not {addr}"),
        ));
    }
    axum::serve(listener, router(broker))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the local API on a Unix socket (access is whatever the socket file's permissions
/// allow: bind it with [`crate::ipc::bind`] for an owner-only socket).
///
/// # Errors
/// The server's I/O errors.
pub async fn serve_unix<A: Agent + 'static>(
    broker: Arc<Broker<A>>,
    listener: tokio::net::UnixListener,
) -> io::Result<()> {
    serve_unix_until(broker, listener, std::future::pending()).await
}

/// [`serve_unix`] until `shutdown` completes; requests in flight are finished first.
///
/// # Errors
/// The server's I/O errors.
pub async fn serve_unix_until<A: Agent + 'static>(
    broker: Arc<Broker<A>>,
    listener: tokio::net::UnixListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(broker))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `POST /v1/tas/unrequest` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unrequest {
    component_id: ComponentId,
}

/// `POST /v1/tas/invoke` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invoke {
    component_id: ComponentId,
    /// Base64 (standard alphabet, padded).
    input: String,
}

#[derive(Serialize)]
struct TaList {
    tas: Vec<TaInfo>,
}

/// An error answer: `{"error": <kind>, "detail": <text>}`.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.kind, "detail": self.detail });
        (self.status, Json(body)).into_response()
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        let (status, kind) = match &e {
            AgentError::UnknownTa(_) => (StatusCode::NOT_FOUND, "unknown_ta"),
            AgentError::Refused(_) => (StatusCode::BAD_REQUEST, "refused"),
            AgentError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "agent_unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "agent_failure"),
        };
        Self {
            status,
            kind,
            detail: e.to_string(),
        }
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Agent(e) => e.into(),
            // The TAM could not be reached or misbehaved: a gateway error.
            other => Self {
                status: StatusCode::BAD_GATEWAY,
                kind: "tam_unreachable",
                detail: other.to_string(),
            },
        }
    }
}

fn outcome_json(outcome: Outcome) -> Json<serde_json::Value> {
    Json(match outcome {
        Outcome::NothingToDo => json!({ "outcome": "nothing_to_do", "exchanges": 0 }),
        Outcome::Completed { exchanges } => {
            json!({ "outcome": "completed", "exchanges": exchanges })
        }
    })
}

async fn list<A: Agent>(State(broker): State<Arc<Broker<A>>>) -> Result<Json<TaList>, ApiError> {
    Ok(Json(TaList {
        tas: broker.list_tas().await?,
    }))
}

async fn request<A: Agent>(
    State(broker): State<Arc<Broker<A>>>,
    Json(body): Json<TaRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(outcome_json(broker.request_ta(body).await?))
}

async fn unrequest<A: Agent>(
    State(broker): State<Arc<Broker<A>>>,
    Json(body): Json<Unrequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(outcome_json(broker.unrequest_ta(body.component_id).await?))
}

async fn invoke<A: Agent>(
    State(broker): State<Arc<Broker<A>>>,
    Json(body): Json<Invoke>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let input = BASE64.decode(&body.input).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        kind: "bad_input",
        detail: format!("input is not base64: {e}"),
    })?;
    let output = broker.invoke_ta(&body.component_id, input).await?;
    Ok(Json(json!({ "output": BASE64.encode(output) })))
}

async fn policy_check<A: Agent>(
    State(broker): State<Arc<Broker<A>>>,
) -> Result<Json<PolicyReport>, ApiError> {
    Ok(Json(broker.policy_check().await?))
}
