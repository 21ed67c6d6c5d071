//! Store: SQLite (WAL) under the state directory for sync history, events, the audit log
//! and per-app inventories; survives a kill -9.
//!
//! It owns the database schema. It must not decide anything: it records and answers.
