//! The HTTP API and `/metrics` (`../shared/design/CONFIG.md`, "HTTP API").
//!
//! Two halves that share no memory:
//! - the axum server ([`bind`], [`spawn`]), a task of its own on the same runtime, which
//!   holds nothing but the sending end of the engine's command channel: every request
//!   becomes one [`ApiCommand`] carrying a `oneshot` for its answer;
//! - [`ApiState`], owned by the application on the engine task, which answers those
//!   commands from the call layer and the endpoint, and keeps what the API shows that the
//!   engine does not (each call's SIP ladder, fed by `Application::on_wire`).
//!
//! So the engine never waits on the API and the API never locks the engine: a slow HTTP
//! client holds up only its own connection.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/calls` | `[CallView]`, oldest first |
//! | `GET /api/calls/{id}` | [`CallDetail`]: the call, its ladder and media-path history; 404 when unknown |
//! | `POST /api/calls/{id}/hangup` | `{"hung_up": id}`; 404 no such call, 409 already ended |
//! | `GET /api/endpoints` | `[EndpointView]` |
//! | `POST /api/calls/{id}/record` | `{"recording": id, "files": [...]}`: a WAV per leg; 404 no such call, 409 ended |
//! | `DELETE /api/calls/{id}/record` | `{"stopped": id}`; 404 when it was not recording |
//! | `GET /api/bans` | `[BanView]`: sources refused after failed authentications |
//! | `GET /api/health` | `{"status": "ok"}` |
//! | `GET /metrics` | Prometheus text format 0.0.4 |
//!
//! A call id that is not a number is a 400, an unknown path a 404, both with a JSON body
//! `{"error": "..."}`.

mod metrics;
mod state;

pub use metrics::Metrics;
pub(crate) use state::civil_from_days;
pub use state::{ApiState, BanView, CallDetail, CallView, EndpointView, LadderEntry, LegView, MediaChange, MediaView, RegistrationView};

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sip_core::b2bua::{CallError, CallId};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a request waits for the engine task before it answers 503. The engine
/// answers in microseconds; only a wedged or stopping engine takes longer.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// Room in the command channel; a full channel makes API requests wait, never the engine.
pub const COMMAND_QUEUE: usize = 64;

/// What the HTTP API asks the engine task, each with the `oneshot` its answer goes back on.
#[derive(Debug)]
pub enum ApiCommand {
    /// The calls that have not ended.
    Calls(oneshot::Sender<Vec<CallView>>),
    /// One call (also an ended one not yet forgotten), with its ladder.
    Call(CallId, oneshot::Sender<Option<CallDetail>>),
    /// Hang a call up.
    HangUp(CallId, oneshot::Sender<Result<(), CallError>>),
    /// The configured endpoints and their state.
    Endpoints(oneshot::Sender<Vec<EndpointView>>),
    /// Sources banned now.
    Bans(oneshot::Sender<Vec<BanView>>),
    /// Start recording a call: the files, or why not.
    Record(CallId, oneshot::Sender<Result<Vec<String>, String>>),
    /// Stop recording a call: whether it was recording.
    StopRecord(CallId, oneshot::Sender<bool>),
    /// Counters and gauges for `/metrics`.
    Metrics(oneshot::Sender<Metrics>),
}

/// Binds `[api] listen`; `None` when the API is disabled (`listen = ""`).
pub async fn bind(listen: Option<SocketAddr>) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = listen else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot bind the HTTP API on {addr}"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(addr), "HTTP API listening");
    Ok(Some(listener))
}

/// Serves the API on `listener` until the returned task is aborted; `commands` goes to
/// the engine task.
pub fn spawn(listener: tokio::net::TcpListener, commands: mpsc::Sender<ApiCommand>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(commands)).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    })
}

/// The routes, on the command channel `commands`.
pub fn router(commands: mpsc::Sender<ApiCommand>) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/calls", get(calls))
        .route("/api/calls/{id}", get(call))
        .route("/api/calls/{id}/hangup", post(hang_up))
        .route("/api/endpoints", get(endpoints))
        .route("/api/bans", get(bans))
        .route("/api/calls/{id}/record", post(record).delete(stop_record))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(commands)
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

type Commands = State<mpsc::Sender<ApiCommand>>;

/// Sends one command and waits (bounded) for its answer.
async fn ask<T>(commands: &mpsc::Sender<ApiCommand>, make: impl FnOnce(oneshot::Sender<T>) -> ApiCommand) -> Result<T, ApiError> {
    let gone = || ApiError(StatusCode::SERVICE_UNAVAILABLE, "the SIP engine is not running".into());
    let (tx, rx) = oneshot::channel();
    let answer = async {
        commands.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    };
    match tokio::time::timeout(ENGINE_WAIT, answer).await {
        Ok(r) => r,
        Err(_) => Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "the SIP engine did not answer in time".into())),
    }
}

/// A call id from the path: its number, as `GET /api/calls` gives it.
fn call_id(text: &str) -> Result<CallId, ApiError> {
    text.parse::<u64>()
        .map(CallId)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("bad call id `{text}`: expected a number such as 1")))
}

fn no_call(id: CallId) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no call {}", id.0))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn calls(State(c): Commands) -> Result<Json<Vec<CallView>>, ApiError> {
    ask(&c, ApiCommand::Calls).await.map(Json)
}

async fn call(State(c): Commands, Path(id): Path<String>) -> Result<Json<CallDetail>, ApiError> {
    let id = call_id(&id)?;
    ask(&c, |tx| ApiCommand::Call(id, tx)).await?.map(Json).ok_or_else(|| no_call(id))
}

async fn hang_up(State(c): Commands, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let id = call_id(&id)?;
    match ask(&c, |tx| ApiCommand::HangUp(id, tx)).await? {
        Ok(()) => Ok(Json(serde_json::json!({ "hung_up": id.0 }))),
        Err(CallError::NoCall) => Err(no_call(id)),
        Err(e @ CallError::WrongState(_)) => Err(ApiError(StatusCode::CONFLICT, format!("cannot hang up call {}: {e}", id.0))),
        Err(e) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot hang up call {}: {e}", id.0))),
    }
}

async fn endpoints(State(c): Commands) -> Result<Json<Vec<EndpointView>>, ApiError> {
    ask(&c, ApiCommand::Endpoints).await.map(Json)
}

async fn record(State(c): Commands, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let id = call_id(&id)?;
    match ask(&c, |tx| ApiCommand::Record(id, tx)).await? {
        Ok(files) => Ok(Json(serde_json::json!({ "recording": id.0, "files": files }))),
        Err(e) if e == "no such call" => Err(no_call(id)),
        Err(e) => Err(ApiError(StatusCode::CONFLICT, format!("cannot record call {}: {e}", id.0))),
    }
}

async fn stop_record(State(c): Commands, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let id = call_id(&id)?;
    if ask(&c, |tx| ApiCommand::StopRecord(id, tx)).await? {
        Ok(Json(serde_json::json!({ "stopped": id.0 })))
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("call {} is not being recorded", id.0)))
    }
}

async fn bans(State(c): Commands) -> Result<Json<Vec<BanView>>, ApiError> {
    ask(&c, ApiCommand::Bans).await.map(Json)
}

async fn metrics(State(c): Commands) -> Result<Response, ApiError> {
    let m = ask(&c, ApiCommand::Metrics).await?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], m.render()).into_response())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no such path: {}", uri.path()))
}
