//! An in-memory [`Tree`] of files; directories are implied by the paths under them.

use std::collections::BTreeMap;

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};

/// Files by normalized relative path.
#[derive(Debug, Default, Clone)]
pub struct MemTree {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl MemTree {
    pub fn with(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.to_owned(), data.into());
        self
    }

    /// Every file as `== path ==` then its text, for failure reports.
    pub fn describe(&self) -> String {
        self.files
            .iter()
            .map(|(p, d)| format!("== {p} ==\n{}\n", String::from_utf8_lossy(d)))
            .collect()
    }

    fn is_dir(&self, path: &str) -> bool {
        if path.is_empty() {
            return true;
        }
        let prefix = format!("{path}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

impl Tree for MemTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        if !self.is_dir(dir) {
            return Err(TreeError::NotFound(dir.to_owned()));
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<&str> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(prefix.as_str()))
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .collect();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let kind = self
                    .kind(&format!("{prefix}{name}"))?
                    .ok_or_else(|| TreeError::NotFound(name.to_owned()))?;
                Ok(TreeEntry {
                    name: name.to_owned(),
                    kind,
                })
            })
            .collect()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| TreeError::NotFound(path.to_owned()))
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        if let Some(d) = self.files.get(path) {
            return Ok(Some(EntryKind::File {
                executable: false,
                size: d.len() as u64,
            }));
        }
        Ok(self.is_dir(path).then_some(EntryKind::Dir))
    }

    fn describe(&self) -> String {
        "fuzz".to_owned()
    }
}
