//! Git source: fetches repositories into one shared cache per normalized URL, resolves
//! refs to revisions, and exposes a revision (or a local folder) as a read-only
//! [`driftless_model::Tree`] read straight from the object database.
//!
//! It owns network access to Git and the cache on disk. It must not render, apply or
//! know about apps and targets. All calls block; the engine runs them on
//! `spawn_blocking`.

mod cache;
mod dir_tree;
mod error;
mod git_tree;
mod progress;
mod url;

pub use cache::{CommitInfo, Credentials, RepoHandle, SourceCache};
pub use dir_tree::DirTree;
pub use error::{SourceError, redact_url, url_credential_problem};
pub use git_tree::GitTree;
