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
            .events(q.app.as_deref(), None, q.limit(100))
            .map_err(|err| Failure::from(EngineError::Store(err)))?;
        return Ok(Json(events).into_response());
    }
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    // Without Last-Event-ID the stream starts at the newest stored event, taken before
    // subscribing: a lagging client then replays only what it missed, never the table.
    let start = match last_id {
        Some(id) => id,
        None => store
            .events(None, None, 1)
            .map_err(|err| Failure::from(EngineError::Store(err)))?
            .first()
            .map_or(0, |newest| newest.id),
    };
    // Subscribe before replaying so nothing falls between the two.
    let live = server.inner.engine.subscribe();
    let mut state = StreamState {
        closing: server.inner.closing.subscribe(),
        server: server.clone(),
        app: q.app,
        live,
        pending: VecDeque::new(),
        replay_after: last_id,
        last_sent: start,
    };
    // The first page now, so that a store failure is an HTTP error, not a silent end.
    state.next_page()?;
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok::<_, Infallible>(event), state))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// Stored events replayed per store query: a client resuming from id 0 costs one page
/// of memory at a time, not the whole table.
pub const REPLAY_PAGE: usize = 500;

struct StreamState {
    closing: tokio::sync::watch::Receiver<bool>,
    server: Server,
    app: Option<String>,
    live: broadcast::Receiver<EventRecord>,
    /// At most one page of stored events, oldest first.
    pending: VecDeque<EventRecord>,
    /// Replaying from the store after this id; `None` once caught up (then live).
    replay_after: Option<i64>,
    last_sent: i64,
}

impl StreamState {
    /// Queues the next page of stored events, if replaying; ends the replay with the
    /// last, short page.
    fn next_page(&mut self) -> Result<(), Failure> {
        let Some(after) = self.replay_after else {
            return Ok(());
        };
        let batch = self
            .server
            .inner
            .engine
            .store()
            .events(self.app.as_deref(), Some(after), REPLAY_PAGE)
            .map_err(|err| Failure::from(EngineError::Store(err)))?;
        self.replay_after = match batch.last() {
            Some(last) if batch.len() == REPLAY_PAGE => Some(last.id),
            _ => None,
        };
        self.pending.extend(batch);
        Ok(())
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if self.pending.is_empty() && self.replay_after.is_some() {
                if let Err(err) = self.next_page() {
                    tracing::warn!(detail = ?err, "event stream: reading stored events failed");
                    return None;
                }
                continue;
            }
            let record = match self.pending.pop_front() {
                Some(record) => record,
                None => match tokio::select! {
                    received = self.live.recv() => received,
                    _ = self.closing.wait_for(|closing| *closing) => return None,
                } {
                    Ok(record) => record,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "event stream lagged; replaying from the store");
                        self.replay_after = Some(self.last_sent);
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
