//! Engine: the app registry, per-app scheduling (interval, jitter, backoff), the
//! reconcile loop, sync, self-heal, rollback and suspend.
//!
//! It owns retries and concurrency. It must not parse HTTP or print for humans: the
//! server and the CLI are faces on it.
