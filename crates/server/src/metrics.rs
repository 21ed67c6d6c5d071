//! `GET /metrics`: Prometheus (OpenMetrics) text. App gauges are read from the engine at
//! scrape time; counters and the sync-duration histogram are fed by the event stream.

use std::sync::Mutex;

use driftless_engine::Engine;
use driftless_store::{EventRecord, SyncResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    app: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabel {
    app: String,
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabel {
    app: String,
    revision: String,
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    app: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    app: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabel {
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoReasonLabel {
    repo: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabel {
    provider: String,
    result: String,
}

const SYNC_STATUSES: [&str; 4] = ["Synced", "OutOfSync", "Failed", "Unknown"];
const HEALTHS: [&str; 6] = [
    "Healthy",
    "Suspended",
    "Progressing",
    "Unknown",
    "Missing",
    "Degraded",
];

type HistogramFamily = Family<ResultLabel, Histogram, fn() -> Histogram>;

fn fetch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn sync_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every metric driftless exports.
pub(crate) struct Metrics {
    registry: Mutex<Registry>,
    sync_status: Family<StatusLabel, Gauge>,
    health: Family<HealthLabel, Gauge>,
    last_sync: Family<AppLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    info: Family<InfoLabel, Gauge>,
    sync_duration: HistogramFamily,
    drift: Family<AppLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    webhooks: Family<WebhookLabel, Counter>,
    fetch_duration: Family<RepoLabel, Histogram, fn() -> Histogram>,
    fetch_errors: Family<RepoReasonLabel, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let sync_status = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "driftless_app_sync_status",
            "1 for the app's current sync status, 0 for the others",
            sync_status.clone(),
        );
        let health = Family::<HealthLabel, Gauge>::default();
        registry.register(
            "driftless_app_health",
            "1 for the app's current health, 0 for the others",
            health.clone(),
        );
        let last_sync = Family::<AppLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "driftless_app_last_sync_timestamp_seconds",
            "When the app's last successful sync finished (Unix seconds)",
            last_sync.clone(),
        );
        let info = Family::<InfoLabel, Gauge>::default();
        registry.register(
            "driftless_app_info",
            "Always 1: the app's current revision and repository",
            info.clone(),
        );
        let sync_duration: HistogramFamily = Family::new_with_constructor(sync_histogram);
        registry.register(
            "driftless_sync_duration_seconds",
            "How long finished syncs took, by result",
            sync_duration.clone(),
        );
        let drift = Family::<AppLabel, Counter>::default();
        registry.register(
            "driftless_drift_events",
            "Live changes made outside Git that driftless detected",
            drift.clone(),
        );
        let errors = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "driftless_reconcile_errors",
            "Failed reconcile steps, by reason (render, sync)",
            errors.clone(),
        );
        let webhooks = Family::<WebhookLabel, Counter>::default();
        registry.register(
            "driftless_webhook_requests",
            "Webhook requests by provider and result",
            webhooks.clone(),
        );
        let fetch_duration: Family<RepoLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(fetch_histogram);
        registry.register(
            "driftless_git_fetch_duration_seconds",
            "How long asking a Git source where the ref points (and fetching) took",
            fetch_duration.clone(),
        );
        let fetch_errors = Family::<RepoReasonLabel, Counter>::default();
        registry.register(
            "driftless_git_fetch_errors",
            "Failed looks at a Git source, by reason",
            fetch_errors.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            fetch_duration,
            fetch_errors,
            sync_status,
            health,
            last_sync,
            info,
            sync_duration,
            drift,
            errors,
            webhooks,
        }
    }

    /// Records one look at a Git source.
    pub(crate) fn fetch(&self, report: &driftless_engine::FetchReport<'_>) {
        let repo = report.repo.to_owned();
        self.fetch_duration
            .get_or_create(&RepoLabel { repo: repo.clone() })
            .observe(report.duration.as_secs_f64());
        if let Some(reason) = report.error {
            self.fetch_errors
                .get_or_create(&RepoReasonLabel {
                    repo,
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    pub(crate) fn webhook(&self, provider: &str, result: &str) {
        self.webhooks
            .get_or_create(&WebhookLabel {
                provider: provider.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one engine event.
    pub(crate) fn observe(&self, engine: &Engine, event: &EventRecord) {
        let Some(app) = event.app.clone() else {
            return;
        };
        match event.kind.as_str() {
            "drift-detected" => {
                self.drift.get_or_create(&AppLabel { app }).inc();
            }
            "render-failed" => {
                self.errors
                    .get_or_create(&ReasonLabel {
                        app,
                        reason: "render".to_owned(),
                    })
                    .inc();
            }
            kind @ ("sync-succeeded" | "sync-failed") => {
                if kind == "sync-failed" {
                    self.errors
                        .get_or_create(&ReasonLabel {
                            app: app.clone(),
                            reason: "sync".to_owned(),
                        })
                        .inc();
                }
                let Ok(history) = engine.store().history(&app, 1) else {
                    return;
                };
                if let Some(record) = history.first()
                    && let Some(finished) = record.finished_at
                    && record.result != SyncResult::Running
                {
                    let seconds = (finished - record.started_at).max(0) as f64 / 1000.0;
                    self.sync_duration
                        .get_or_create(&ResultLabel {
                            app,
                            result: record.result.as_str().to_owned(),
                        })
                        .observe(seconds);
                }
            }
            _ => {}
        }
    }

    /// Refreshes the per-app gauges from the engine and encodes everything.
    pub(crate) fn render(&self, engine: &Engine) -> String {
        // One scrape at a time: the gauges are cleared and refilled below.
        let registry = self
            .registry
            .lock()
            .expect("metrics registry lock poisoned");
        self.sync_status.clear();
        self.health.clear();
        self.info.clear();
        self.last_sync.clear();
        for app in engine.apps() {
            let status = name_of(&app.sync_status);
            for s in SYNC_STATUSES {
                self.sync_status
                    .get_or_create(&StatusLabel {
                        app: app.name.clone(),
                        status: s.to_owned(),
                    })
                    .set(i64::from(s == status));
            }
            let health = name_of(&app.health);
            for h in HEALTHS {
                self.health
                    .get_or_create(&HealthLabel {
                        app: app.name.clone(),
                        health: h.to_owned(),
                    })
                    .set(i64::from(h == health));
            }
            self.info
                .get_or_create(&InfoLabel {
                    app: app.name.clone(),
                    revision: app.revision.clone().unwrap_or_default(),
                    repo: app.source.repo.clone(),
                })
                .set(1);
            if let Ok(Some(last)) = engine.store().last_sync(&app.name, true)
                && let Some(finished) = last.finished_at
            {
                self.last_sync
                    .get_or_create(&AppLabel {
                        app: app.name.clone(),
                    })
                    .set(finished as f64 / 1000.0);
            }
        }
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(%err, "encoding metrics");
        }
        out
    }
}

fn name_of(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_fetches_are_timed_and_failures_counted_by_reason() {
        let metrics = Metrics::new();
        for error in [None, Some("unreachable"), Some("unreachable")] {
            metrics.fetch(&driftless_engine::FetchReport {
                app: "web",
                repo: "https://git.example/deploy.git",
                duration: std::time::Duration::from_millis(30),
                error,
            });
        }
        let mut text = String::new();
        let registry = metrics.registry.lock().expect("lock");
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(r#"driftless_git_fetch_duration_seconds_count{repo="https://git.example/deploy.git"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"driftless_git_fetch_errors_total{repo="https://git.example/deploy.git",reason="unreachable"} 2"#),
            "{text}"
        );
    }
}
