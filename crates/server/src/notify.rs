//! Notification sinks: a background task fed by the engine's event stream POSTs matching
//! events to each sink's webhook, with retries, never blocking the reconcile loop.
//!
//! Payloads carry the event record only (app, kind, severity, message, revision); events
//! never hold secret values.

use std::collections::HashMap;
use std::time::Duration;

use driftless_engine::Engine;
use driftless_engine::config::{NotificationConfig, NotificationFormat};
use driftless_model::Health;
use driftless_store::{EventRecord, Severity};
use tokio::sync::{broadcast, mpsc};

/// Attempts per notification.
pub const TRIES: u32 = 3;
/// Wait before the second attempt; doubled before each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How often app health is compared to spot `health-degraded`.
pub const HEALTH_POLL: Duration = Duration::from_secs(2);
/// Notifications queued per sink before new ones are dropped (with a warning).
const QUEUE: usize = 256;

/// The body a sink receives.
pub fn body(format: NotificationFormat, event: &EventRecord) -> serde_json::Value {
    match format {
        NotificationFormat::Json => serde_json::to_value(event).unwrap_or_default(),
        NotificationFormat::Slack => {
            let app = event.app.as_deref().unwrap_or("driftless");
            let revision = event
                .revision
                .as_deref()
                .map(|r| format!(" at {}", r.get(..12).unwrap_or(r)))
                .unwrap_or_default();
            serde_json::json!({
                "text": format!("[driftless] {app}: {}{revision} — {}", event.kind, event.message)
            })
        }
    }
}

/// Starts the notifier; it ends when the engine's event stream closes.
pub fn spawn(
    engine: Engine,
    sinks: Vec<NotificationConfig>,
) -> Option<tokio::task::JoinHandle<()>> {
    if sinks.is_empty() {
        return None;
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "notifications disabled: cannot build an HTTP client");
            return None;
        }
    };
    let mut queues = Vec::new();
    for sink in sinks {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(client.clone(), sink.clone(), rx));
        queues.push((sink, tx));
    }
    let mut events = engine.subscribe();
    Some(tokio::spawn(async move {
        let mut health: HashMap<String, Health> = engine
            .apps()
            .into_iter()
            .map(|a| (a.name, a.health))
            .collect();
        let mut tick = tokio::time::interval(HEALTH_POLL);
        loop {
            let event = tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "notifications fell behind; some events were not sent");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    for app in engine.apps() {
                        let before = health.insert(app.name.clone(), app.health);
                        if app.health == Health::Degraded && before.is_some_and(|h| h != Health::Degraded) {
                            let event = EventRecord {
                                id: 0,
                                at: now_ms(),
                                app: Some(app.name.clone()),
                                kind: "health-degraded".to_owned(),
                                severity: Severity::Warning,
                                message: app.error.clone().unwrap_or_else(|| "app health is Degraded".to_owned()),
                                object: None,
                                revision: app.revision.clone(),
                            };
                            dispatch(&queues, &event);
                        }
                    }
                    continue;
                }
            };
            dispatch(&queues, &event);
        }
    }))
}

fn dispatch(queues: &[(NotificationConfig, mpsc::Sender<EventRecord>)], event: &EventRecord) {
    for (sink, tx) in queues {
        if sink.wants(&event.kind) && tx.try_send(event.clone()).is_err() {
            tracing::warn!(sink = %sink.name.value, kind = %event.kind, "notification queue full; dropped");
        }
    }
}

async fn deliver(
    client: reqwest::Client,
    sink: NotificationConfig,
    mut queue: mpsc::Receiver<EventRecord>,
) {
    while let Some(event) = queue.recv().await {
        let body = body(sink.webhook.format, &event);
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=TRIES {
            let result = client.post(&sink.webhook.url).json(&body).send().await;
            let why = match result {
                Ok(response) if response.status().is_success() => break,
                Ok(response) => format!("HTTP {}", response.status()),
                Err(err) => err.to_string(),
            };
            if attempt == TRIES {
                tracing::warn!(sink = %sink.name.value, kind = %event.kind, %why, "notification not delivered after {TRIES} tries");
                break;
            }
            tracing::debug!(sink = %sink.name.value, attempt, %why, "notification failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
