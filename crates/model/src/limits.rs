//! The caps every parser of repository content enforces, in one place, so that rendering
//! (plain YAML/JSON, kustomize, SOPS) refuses hostile input with the same figures.

/// Caps that keep hostile input from exhausting memory, stack or time.
///
/// One value is handed down a render: `driftless-render` checks files, documents and
/// objects, passes it to the native kustomize build and to the SOPS parsers, and every one
/// of them refuses input past a cap with an error naming the cap and its value.
///
/// The defaults fit any real repository we know of; raise them only for trusted sources.
/// [`Limits::max_depth`] must stay small: every tree walker, emitter and merge on parsed
/// input is bounded by it, and its default is what keeps them inside a 2 MiB thread stack
/// (the size of tokio's blocking threads and of test threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file read, in bytes (default 8 MiB).
    pub max_file_bytes: u64,
    /// Most documents in one file (default 10,000).
    pub max_documents: usize,
    /// Most objects (or files) in one render (default 100,000).
    pub max_total_objects: usize,
    /// Deepest nesting of lists and mappings (default 100).
    pub max_depth: usize,
    /// Most nodes that may be copied in one render, all files together (default
    /// 100,000): YAML aliases, and the values kustomize's JSON patches, replacements and
    /// vars copy. A "billion laughs" document, or a patch that copies a subtree into
    /// itself over and over, fails after at most this many copies.
    pub max_alias_expansion: usize,
    /// Most bytes one render may read, all files together (default 64 MiB).
    pub max_total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 8 * 1024 * 1024,
            max_documents: 10_000,
            max_total_objects: 100_000,
            max_depth: 100,
            max_alias_expansion: 100_000,
            max_total_bytes: 64 * 1024 * 1024,
        }
    }
}
