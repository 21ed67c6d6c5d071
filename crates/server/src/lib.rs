//! Server: the HTTP face on the engine — REST API, webhooks, server-sent events,
//! Prometheus metrics and the web UI.
//!
//! It holds no reconcile logic of its own: every action is a call into the engine.
