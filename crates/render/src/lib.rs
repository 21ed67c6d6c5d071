//! Render: turns a read-only tree at a path into a [`driftless_model::DesiredSet`] —
//! plain YAML/JSON manifests, or host files byte for byte — and refuses the whole
//! revision on the first invalid document with file:line:col.
//!
//! Pure: files in, objects out. It must not touch the network, the clock or live state.
