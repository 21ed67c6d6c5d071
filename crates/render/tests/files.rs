//! render_files: every file byte for byte, symlinks inside only, refusals with messages.

mod common;

use common::MemTree;
use driftless_model::{Content, Object};
use driftless_render::{Limits, render_files};

fn errors(tree: &MemTree, path: &str, limits: &Limits) -> String {
    match render_files(tree, path, limits) {
        Ok(objs) => panic!("expected errors, rendered {} files", objs.len()),
        Err(e) => e.to_string(),
    }
}

fn describe(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .map(|o| match &o.content {
            Content::File { data, executable } => {
                format!(
                    "{} {} {:?} from {}",
                    o.id,
                    if *executable { "x" } else { "-" },
                    String::from_utf8_lossy(data),
                    o.origin
                )
            }
            Content::Manifest(_) => panic!("file expected"),
        })
        .collect()
}

#[test]
fn every_file_byte_for_byte_with_the_executable_bit() {
    let binary = [0u8, 159, 146, 150, 255, b'\n'];
    let tree = MemTree::new()
        .file("etc/app/app.conf", "port = 80\n")
        .bytes("etc/app/bin/run.sh", b"#!/bin/sh\necho hi\n", true)
        .bytes("etc/app/blob.bin", &binary, false)
        .file("etc/app/not-yaml.yaml", "a: [\n")
        .file("etc/other", "outside");
    let objs = render_files(&tree, "etc/app", &Limits::default()).unwrap();
    assert_eq!(
        describe(&objs),
        [
            "app.conf - \"port = 80\\n\" from etc/app/app.conf",
            "bin/run.sh x \"#!/bin/sh\\necho hi\\n\" from etc/app/bin/run.sh",
            "blob.bin - \"\\0���\u{fffd}\\n\" from etc/app/blob.bin",
            "not-yaml.yaml - \"a: [\\n\" from etc/app/not-yaml.yaml",
        ]
    );
    let Content::File { data, .. } = &objs[2].content else {
        unreachable!()
    };
    assert_eq!(data, &binary);
    assert!(objs.iter().all(|o| o.id.is_file()));
}

#[test]
fn symlinks_inside_render_their_target_and_others_are_refused() {
    let tree = MemTree::new()
        .bytes("root/bin/tool", b"#!/bin/sh\n", true)
        .symlink("root/tool-link", "bin/tool")
        .symlink("root/bin/chain", "../tool-link");
    let objs = render_files(&tree, "root", &Limits::default()).unwrap();
    assert_eq!(
        describe(&objs),
        [
            "bin/chain x \"#!/bin/sh\\n\" from root/bin/chain",
            "bin/tool x \"#!/bin/sh\\n\" from root/bin/tool",
            "tool-link x \"#!/bin/sh\\n\" from root/tool-link",
        ]
    );

    let tree = MemTree::new()
        .file("root/ok", "ok")
        .file("secret", "s")
        .symlink("root/up", "../secret")
        .symlink("root/abs", "/etc/shadow")
        .symlink("root/gone", "nothing")
        .symlink("root/dir", "sub")
        .file("root/sub/f", "f")
        .submodule("root/vendored");
    assert_eq!(
        errors(&tree, "root", &Limits::default()),
        [
            "root/abs: symlink to \"/etc/shadow\" leaves \"root\"",
            "root/dir: symlink to \"sub\" points at a directory; only links to files are rendered",
            "root/gone: symlink to \"nothing\" points at nothing",
            "root/up: symlink to \"../secret\" leaves \"root\"",
            "root/vendored: is a Git submodule; submodule contents are not rendered",
        ]
        .join("\n")
    );
}

#[test]
fn the_repository_root_can_be_rendered_and_links_must_stay_in_it() {
    let tree = MemTree::new()
        .file("a", "1")
        .symlink("b", "a")
        .symlink("c", "../a");
    assert_eq!(
        errors(&tree, "", &Limits::default()),
        "c: symlink to \"../a\" leaves \"\""
    );
    let tree = MemTree::new().file("a", "1").symlink("b", "./a");
    assert_eq!(
        render_files(&tree, "", &Limits::default()).unwrap().len(),
        2
    );
}

#[test]
fn limits_on_size_and_count_apply() {
    let tree = MemTree::new()
        .file("r/big", &"x".repeat(50))
        .file("r/small", "x");
    let limits = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        errors(&tree, "r", &limits),
        "r/big: file is 50 bytes, over the limit of 10 bytes"
    );
    let limits = Limits {
        max_total_objects: 1,
        ..Limits::default()
    };
    assert_eq!(
        errors(&tree, "r", &limits),
        "r: more than 1 objects in total"
    );
}

#[test]
fn bad_paths_are_refused() {
    let tree = MemTree::new().file("r/a", "1").dir("empty");
    assert_eq!(
        errors(&tree, "r/..", &Limits::default()),
        "r/..: path \"r/..\" refused: `..` components are not allowed"
    );
    assert_eq!(
        errors(&tree, "missing", &Limits::default()),
        "missing: path \"missing\" does not exist"
    );
    assert_eq!(
        errors(&tree, "r/a", &Limits::default()),
        "r/a: path \"r/a\" is not a directory"
    );
    assert_eq!(
        errors(&tree, "empty", &Limits::default()),
        "empty: no files under \"empty\""
    );
}
