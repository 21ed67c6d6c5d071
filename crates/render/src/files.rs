//! Files mode: every file under a path, byte for byte, for the host-files target.

use driftless_model::{Content, Object, ObjectRef, Origin};

use crate::Limits;
use crate::decrypt::DecryptingTree;
use crate::error::{RenderError, RenderErrorKind as K, RenderErrors};
use crate::walk::{self, Root};

/// The rendered files, and the names of those whose content was decrypted.
pub(crate) fn render(
    tree: &DecryptingTree<'_>,
    path: &str,
    limits: &Limits,
) -> Result<(Vec<Object>, Vec<String>), RenderErrors> {
    let dir = match walk::root(tree, path).map_err(|e| RenderErrors(vec![e]))? {
        Root::Dir(dir) => dir,
        Root::File(file) => {
            return Err(RenderErrors(vec![RenderError::in_file(
                &file,
                K::NotADirectory(file.clone()),
            )]));
        }
    };
    let mut errors = Vec::new();
    let entries = walk::walk(tree, &dir, limits, &|_| true, &mut errors);
    if entries.is_empty() && errors.is_empty() {
        return Err(RenderErrors(vec![RenderError::in_file(
            &dir,
            K::NoFiles(dir.clone()),
        )]));
    }
    let mut objects = Vec::with_capacity(entries.len());
    let mut decrypted = Vec::new();
    for entry in &entries {
        match walk::read(tree, entry, limits) {
            Ok(data) => objects.push(Object {
                id: ObjectRef::file(entry.rel.clone()),
                content: Content::File {
                    data,
                    executable: entry.executable,
                },
                origin: Origin {
                    file: entry.path.clone(),
                    line: 0,
                    column: 0,
                },
            }),
            Err(e) => errors.push(e),
        }
        if tree.was_decrypted(&entry.read_path) {
            decrypted.push(entry.rel.clone());
        }
    }
    if errors.is_empty() {
        Ok((objects, decrypted))
    } else {
        // In path order; a file's own errors keep their order.
        errors.sort_by(|a, b| a.origin.file.cmp(&b.origin.file));
        Err(RenderErrors(errors))
    }
}
