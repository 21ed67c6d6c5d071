//! The shared vocabulary of driftless: object ids, desired sets, plans, change sets,
//! inventories, statuses, the read-only [`Tree`] that renderers read from, and the
//! [`Target`] trait that appliers implement.
//!
//! This crate owns types and pure helpers only. It must not do I/O, spawn tasks, read the
//! clock or depend on any other driftless crate: every other crate depends on it.

mod limits;
mod object;
mod path;
mod plan;
mod status;
mod target;
mod tree;

pub use limits::Limits;
pub use object::{Content, DesiredSet, Inventory, Object, ObjectRef, Origin};
pub use path::{PathError, join_inside, normalize_rel_path};
pub use plan::{Action, Change, ChangeSet, Plan, Task, TaskOp};
pub use status::{Health, SyncStatus};
pub use target::{DriftEvent, DriftNotifier, ObjectHealth, SyncOptions, Target, TargetError};
pub use tree::{EntryKind, Tree, TreeEntry, TreeError};
