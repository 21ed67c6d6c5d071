//! Host files target: makes a folder hold exactly the files of a revision, atomically
//! per file, prunes only inventory entries, and watches for drift.
//!
//! It owns every write under its root. It must not write outside the root, follow a
//! symlink out of it, or touch a file it does not manage.
