//! `GET /api/v1/events`: the stored events as JSON, or a live Server-Sent Events stream
//! when the client sends `Accept: text/event-stream`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use driftless_engine::EngineError;
use driftless_store::EventRecord;
use tokio::sync::broadcast;

use crate::api::{ListQuery, query};
use crate::{Failure, Server};

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) async fn events(
    State(server): State<Server>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let q = query(q)?;
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let store = server.inner.engine.store();
    if !wants_stream {
        let events = store
            .events(q.app.as_deref(), None, q.limit.unwrap_or(100).min(1000))
            .map_err(|err| Failure::from(EngineError::Store(err)))?;
        return Ok(Json(events).into_response());
    }
    // Subscribe before replaying so nothing falls between the two.
    let live = server.inner.engine.subscribe();
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let mut state = StreamState {
        closing: server.inner.closing.subscribe(),
        server: server.clone(),
        app: q.app,
        live,
        pending: VecDeque::new(),
        last_sent: last_id.unwrap_or(i64::MIN),
    };
    if let Some(after) = last_id {
        state.catch_up(after)?;
    }
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

struct StreamState {
    closing: tokio::sync::watch::Receiver<bool>,
    server: Server,
    app: Option<String>,
    live: broadcast::Receiver<EventRecord>,
    pending: VecDeque<EventRecord>,
    last_sent: i64,
}

impl StreamState {
    /// Queues the stored events after `after` (oldest first).
    fn catch_up(&mut self, after: i64) -> Result<(), Failure> {
        let mut cursor = after;
        loop {
            let batch = self
                .server
                .inner
                .engine
                .store()
                .events(self.app.as_deref(), Some(cursor), 500)
                .map_err(|err| Failure::from(EngineError::Store(err)))?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            cursor = last.id;
            let full = batch.len() == 500;
            self.pending.extend(batch);
            if !full {
                return Ok(());
            }
        }
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            let record = match self.pending.pop_front() {
                Some(record) => record,
                None => match tokio::select! {
                    received = self.live.recv() => received,
                    _ = self.closing.wait_for(|closing| *closing) => return None,
                } {
                    Ok(record) => record,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "event stream lagged; replaying from the store");
                        if self.catch_up(self.last_sent).is_err() {
                            return None;
                        }
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if record.id <= self.last_sent
                || self
                    .app
                    .as_ref()
                    .is_some_and(|app| record.app.as_ref() != Some(app))
            {
                continue;
            }
            self.last_sent = record.id;
            let data = serde_json::to_string(&record).unwrap_or_default();
            return Some(
                Event::default()
                    .event(record.kind.clone())
                    .id(record.id.to_string())
                    .data(data),
            );
        }
    }
}
