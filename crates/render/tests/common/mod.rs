//! An in-memory [`Tree`] for render tests: files, symlinks and submodules by path,
//! directories implied by their contents (or added empty).

#![allow(dead_code)]

use std::collections::BTreeMap;

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};

#[derive(Clone)]
enum Node {
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
    Submodule,
    Dir,
}

#[derive(Default, Clone)]
pub struct MemTree {
    nodes: BTreeMap<String, Node>,
}

impl MemTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.add(
            path,
            Node::File {
                data: text.as_bytes().to_vec(),
                executable: false,
            },
        );
        self
    }

    pub fn bytes(mut self, path: &str, data: &[u8], executable: bool) -> Self {
        self.add(
            path,
            Node::File {
                data: data.to_vec(),
                executable,
            },
        );
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.add(path, Node::Symlink(target.to_owned()));
        self
    }

    pub fn submodule(mut self, path: &str) -> Self {
        self.add(path, Node::Submodule);
        self
    }

    pub fn dir(mut self, path: &str) -> Self {
        self.add(path, Node::Dir);
        self
    }

    fn add(&mut self, path: &str, node: Node) {
        let mut parent = path;
        while let Some(i) = parent.rfind('/') {
            parent = &parent[..i];
            self.nodes.insert(parent.to_owned(), Node::Dir);
        }
        self.nodes.insert(path.to_owned(), node);
    }
}

impl Tree for MemTree {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        if !dir.is_empty() && !matches!(self.nodes.get(dir), Some(Node::Dir)) {
            return Err(TreeError::NotFound(dir.to_owned()));
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = Vec::new();
        for (path, _) in self.nodes.range(prefix.clone()..) {
            let Some(rest) = path.strip_prefix(&prefix) else {
                break;
            };
            if rest.is_empty() || rest.contains('/') {
                continue;
            }
            let kind = self.kind(path)?.expect("listed paths exist");
            out.push(TreeEntry {
                name: rest.to_owned(),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        match self.nodes.get(path) {
            Some(Node::File { data, .. }) => Ok(data.clone()),
            Some(_) => Err(TreeError::WrongKind {
                path: path.to_owned(),
                reason: "not a file",
            }),
            None => Err(TreeError::NotFound(path.to_owned())),
        }
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        Ok(self.nodes.get(path).map(|n| match n {
            Node::File { data, executable } => EntryKind::File {
                executable: *executable,
                size: data.len() as u64,
            },
            Node::Symlink(t) => EntryKind::Symlink { target: t.clone() },
            Node::Submodule => EntryKind::Submodule,
            Node::Dir => EntryKind::Dir,
        }))
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}
