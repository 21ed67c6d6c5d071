//! Tree views: a Git revision read from the object database, and a local folder.

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};

use driftless_model::{EntryKind, PathError, Tree, TreeError};
use driftless_source::{Credentials, DirTree, SourceCache};
use support::Upstream;

const BIG: usize = 3 * 1024 * 1024 + 17;

fn big_content() -> Vec<u8> {
    (0..BIG).map(|i| (i * 31 % 251) as u8).collect()
}

/// Lays out the same files in `root`: nested dirs whose Git order differs from byte
/// order (`a.b` vs `a/`), an executable, symlinks inside and outside, a big file.
fn lay_out(root: &std::path::Path) {
    let write = |path: &str, content: &[u8]| {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    };
    write("a/inner.yaml", b"kind: A\n");
    write("a.b", b"dot\n");
    write("a-c", b"dash\n");
    write("apps/web/deploy.yaml", b"replicas: 2\n");
    write("apps/web/nested/deep/x.json", b"{}\n");
    write("bin/run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        root.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write("big.bin", &big_content());
    symlink("apps/web/deploy.yaml", root.join("link-inside")).unwrap();
    symlink("../../etc/passwd", root.join("link-outside")).unwrap();
    symlink("apps", root.join("link-dir")).unwrap();
}

fn names(tree: &dyn Tree, dir: &str) -> Vec<String> {
    tree.list(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// The behaviour both tree kinds share.
fn check_tree(tree: &dyn Tree) {
    assert_eq!(
        names(tree, ""),
        [
            "a",
            "a-c",
            "a.b",
            "apps",
            "big.bin",
            "bin",
            "link-dir",
            "link-inside",
            "link-outside"
        ],
        "byte order, not Git's tree order"
    );
    assert_eq!(names(tree, "apps/web"), ["deploy.yaml", "nested"]);
    assert_eq!(names(tree, "./apps//web/nested/../nested/deep"), ["x.json"]);
    assert_eq!(tree.read("apps/web/deploy.yaml").unwrap(), b"replicas: 2\n");
    assert_eq!(tree.read("big.bin").unwrap(), big_content());
    assert_eq!(
        tree.kind("big.bin").unwrap(),
        Some(EntryKind::File {
            executable: false,
            size: BIG as u64
        })
    );
    assert_eq!(
        tree.kind("bin/run.sh").unwrap(),
        Some(EntryKind::File {
            executable: true,
            size: 18
        })
    );
    assert_eq!(tree.kind("").unwrap(), Some(EntryKind::Dir));
    assert_eq!(tree.kind("apps").unwrap(), Some(EntryKind::Dir));
    assert_eq!(tree.kind("missing").unwrap(), None);
    assert_eq!(tree.kind("a.b/under-a-file").unwrap(), None);
    assert_eq!(
        tree.kind("link-inside").unwrap(),
        Some(EntryKind::Symlink {
            target: "apps/web/deploy.yaml".into()
        })
    );
    assert_eq!(
        tree.kind("link-outside").unwrap(),
        Some(EntryKind::Symlink {
            target: "../../etc/passwd".into()
        })
    );
    let listed = tree.list("").unwrap();
    let link = listed.iter().find(|e| e.name == "link-outside").unwrap();
    assert!(matches!(&link.kind, EntryKind::Symlink { target } if target == "../../etc/passwd"));

    // Symlinks are never followed, neither as the file nor as a parent directory.
    let err = tree.read("link-outside").unwrap_err();
    assert!(matches!(err, TreeError::WrongKind { .. }), "{err:?}");
    assert!(
        err.to_string().contains("link-outside: is a symlink"),
        "{err}"
    );
    let err = tree.read("link-dir/web/deploy.yaml").unwrap_err();
    assert!(
        err.to_string()
            .contains("link-dir/web/deploy.yaml: a parent is not a directory"),
        "{err}"
    );
    let err = tree.list("link-dir").unwrap_err();
    assert!(err.to_string().starts_with("link-dir: "), "{err}");

    // Paths cannot leave the root.
    let err = tree.read("../outside.txt").unwrap_err();
    assert!(
        matches!(err, TreeError::Path(PathError::EscapesRoot(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("leaves the root"), "{err}");
    let err = tree.list("apps/../../x").unwrap_err();
    assert!(
        matches!(err, TreeError::Path(PathError::EscapesRoot(_))),
        "{err:?}"
    );
    let err = tree.read("/etc/passwd").unwrap_err();
    assert!(
        matches!(err, TreeError::Path(PathError::Absolute(_))),
        "{err:?}"
    );

    let err = tree.read("apps").unwrap_err();
    assert!(err.to_string().contains("apps: is a directory"), "{err}");
    let err = tree.read("apps/nope.yaml").unwrap_err();
    assert!(
        matches!(err, TreeError::NotFound(ref p) if p == "apps/nope.yaml"),
        "{err:?}"
    );
    let err = tree.list("a.b").unwrap_err();
    assert!(err.to_string().contains("a.b: not a directory"), "{err}");
}

#[test]
fn git_tree_lists_reads_and_reports_kinds() {
    let up = Upstream::new("trees");
    lay_out(&up.path());
    up.git(&["add", "-A"]);
    up.git(&["commit", "-q", "-m", "layout"]);
    let layout = up.head();
    // A submodule entry (gitlink) without a .gitmodules file is enough for the tree.
    let sub = up.head();
    up.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{sub},vendor/lib"),
    ]);
    up.git(&["commit", "-q", "-m", "submodule"]);

    let dir = tempfile::tempdir().unwrap();
    let cache = SourceCache::new(dir.path().to_owned());
    let repo = cache
        .repo(&up.path().display().to_string(), Credentials::default())
        .unwrap();
    let revision = repo.update("main").unwrap();
    let tree = repo.tree(&layout).unwrap();
    assert_eq!(tree.revision(), layout);
    assert_eq!(tree.describe(), format!("git {}", &layout[..7]));
    check_tree(&tree);
    let latest = repo.tree(&revision).unwrap();
    assert_eq!(
        latest.kind("vendor/lib").unwrap(),
        Some(EntryKind::Submodule)
    );
    let err = latest.read("vendor/lib").unwrap_err();
    assert!(err.to_string().contains("is a submodule"), "{err}");
    assert!(
        repo.tree("no-such-ref")
            .unwrap_err()
            .to_string()
            .contains("unknown ref")
    );

    // The tree can move to another thread.
    let old = repo.tree("main").unwrap();
    let handle = std::thread::spawn(move || old.read("a.b").unwrap());
    assert_eq!(handle.join().unwrap(), b"dot\n");
}

#[test]
fn dir_tree_is_confined_to_its_root() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(outer.path().join("outside.txt"), b"secret").unwrap();
    lay_out(&root);
    symlink(outer.path().join("outside.txt"), root.join("abs-link")).unwrap();

    let tree = DirTree::new(root.clone()).unwrap();
    assert_eq!(
        tree.describe(),
        std::fs::canonicalize(&root).unwrap().display().to_string()
    );
    // abs-link is extra in the folder; check the rest like the Git tree.
    assert!(names(&tree, "").contains(&"abs-link".to_owned()));
    std::fs::remove_file(root.join("abs-link")).unwrap();
    check_tree(&tree);

    symlink(outer.path(), root.join("escape-dir")).unwrap();
    let err = tree.read("escape-dir/outside.txt").unwrap_err();
    assert!(
        err.to_string().contains("a parent is not a directory"),
        "{err}"
    );
    assert_eq!(tree.kind("escape-dir/outside.txt").unwrap(), None);
    let err = tree.list("escape-dir").unwrap_err();
    assert!(err.to_string().contains("is a symlink"), "{err}");

    let err = DirTree::new(outer.path().join("outside.txt")).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    let err = DirTree::new(outer.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
