//! Diff: compares desired and live objects and renders readable unified diffs, with
//! secret values redacted.
//!
//! Pure: no I/O, no clock. It must not decide what to apply; targets and the engine do.
