//! A build's share of [`Limits`]: what it has read and copied so far, and the checks that
//! keep every later walk (emitters, merges, patches, hashes) inside the depth limit.

use std::cell::Cell;

use driftless_model::{Limits, TreeError};

use crate::KustomizeError;
use crate::yaml::{Copied, Value};

/// The limits in force and what the build has spent of them.
pub(crate) struct Caps<'a> {
    pub limits: &'a Limits,
    /// Copied so far: YAML anchors and aliases, JSON patch values, replacements, vars.
    copied: Cell<Copied>,
    /// Bytes read so far, all files together.
    read: Cell<u64>,
}

impl<'a> Caps<'a> {
    pub fn new(limits: &'a Limits) -> Self {
        Caps {
            limits,
            copied: Cell::new(Copied::default()),
            read: Cell::new(0),
        }
    }

    /// What was copied so far, for the YAML reader to add to.
    pub fn copied(&self) -> Copied {
        self.copied.get()
    }

    pub fn set_copied(&self, c: Copied) {
        self.copied.set(c);
    }

    /// Counts a copy of `v` (its nodes and string bytes); fails past
    /// [`Limits::max_alias_expansion`] nodes or [`Limits::max_total_bytes`] bytes.
    pub fn copy(&self, v: &Value) -> Result<(), String> {
        let (nodes, bytes) = v.weight();
        self.copy_weight(nodes, bytes)
    }

    /// Counts a copy of `nodes` nodes holding `bytes` bytes of text.
    pub fn copy_weight(&self, nodes: usize, bytes: u64) -> Result<(), String> {
        let mut c = self.copied.get();
        let r = c.add(nodes, bytes, self.limits);
        self.copied.set(c);
        r.map_err(|m| {
            format!(
                "copies {m} in one build; a patch, replacement or var that copies a large value over and over?"
            )
        })
    }

    /// Fails when a value placed `levels` deep (containers above it) would nest deeper
    /// than [`Limits::max_depth`]. Checked before the value is placed.
    pub fn fits(&self, levels: usize, value: &Value) -> Result<(), String> {
        if levels.saturating_add(value.height()) > self.limits.max_depth {
            return Err(self.too_deep());
        }
        Ok(())
    }

    pub fn too_deep(&self) -> String {
        format!("nesting deeper than {} levels", self.limits.max_depth)
    }

    /// Checks a file's size against [`Limits::max_file_bytes`].
    pub fn file_size(&self, path: &str, size: u64) -> Result<(), KustomizeError> {
        if size > self.limits.max_file_bytes {
            return Err(KustomizeError::Tree(TreeError::TooLarge {
                path: path.to_owned(),
                size,
                limit: self.limits.max_file_bytes,
            }));
        }
        Ok(())
    }

    /// Counts bytes read; fails past [`Limits::max_total_bytes`].
    pub fn read(&self, path: &str, bytes: u64) -> Result<(), KustomizeError> {
        self.file_size(path, bytes)?;
        let n = self.read.get().saturating_add(bytes);
        self.read.set(n);
        if n > self.limits.max_total_bytes {
            return Err(KustomizeError::Limit {
                file: path.to_owned(),
                msg: format!(
                    "the build reads more than {} bytes in total (limit max_total_bytes)",
                    self.limits.max_total_bytes
                ),
            });
        }
        Ok(())
    }
}
