//! The files target against real directories.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use driftless_model::{
    Action, Content, DesiredSet, DriftEvent, Health, Inventory, Object, ObjectRef, Origin, Plan,
    SyncOptions, Target, TargetError, Task, TaskOp,
};
use driftless_target_files::FilesTarget;

const PRUNE: SyncOptions = SyncOptions {
    prune: true,
    force_conflicts: false,
};
const NO_PRUNE: SyncOptions = SyncOptions {
    prune: false,
    force_conflicts: false,
};

fn file(name: &str, data: &str, executable: bool) -> Object {
    Object {
        id: ObjectRef::file(name),
        content: Content::File {
            data: data.as_bytes().to_vec(),
            executable,
        },
        origin: Origin {
            file: name.to_owned(),
            line: 0,
            column: 0,
        },
    }
}

fn desired(objects: Vec<Object>) -> DesiredSet {
    DesiredSet {
        revision: "rev1".into(),
        objects,
    }
}

fn inventory_of(names: &[&str]) -> Inventory {
    Inventory {
        entries: names.iter().map(|n| ObjectRef::file(*n)).collect(),
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, FilesTarget) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let target = FilesTarget::new(root.clone(), None).expect("target");
    (dir, root, target)
}

fn ops(plan: &Plan) -> Vec<(String, TaskOp)> {
    plan.tasks
        .iter()
        .map(|t| (t.id.name.clone(), t.op))
        .collect()
}

fn actions(cs: &driftless_model::ChangeSet) -> Vec<(String, Action, Option<String>)> {
    cs.changes
        .iter()
        .map(|c| (c.id.name.clone(), c.action, c.detail.clone()))
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// Every file under `dir` whose name starts with the temp prefix.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let entry = entry.expect("entry");
            let ft = entry.file_type().expect("file type");
            if ft.is_dir() {
                stack.push(entry.path());
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".driftless-tmp-")
            {
                out.push(entry.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn create_update_unchanged_and_delete() {
    let (_dir, root, target) = setup();
    let v1 = desired(vec![
        file("etc/app.conf", "port=80\nhost=a\n", false),
        file("bin/run.sh", "#!/bin/sh\necho hi\n", true),
        file("README", "hello\n", false),
    ]);
    let empty = Inventory::default();

    let plan = target.plan(&v1, &empty, PRUNE).await.expect("plan");
    assert_eq!(plan.revision, "rev1");
    assert!(
        plan.tasks.iter().all(|t| t.op == TaskOp::Create),
        "{:?}",
        ops(&plan)
    );
    let readme = plan
        .tasks
        .iter()
        .find(|t| t.id.name == "README")
        .expect("task");
    assert_eq!(
        readme.diff.as_deref(),
        Some("--- /dev/null\n+++ b/README\n@@ -0,0 +1 @@\n+hello\n")
    );
    // Planning changes nothing.
    assert!(!root.join("etc").exists());

    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(cs.count(Action::Created), 3, "{:?}", actions(&cs));
    assert_eq!(
        fs::read_to_string(root.join("etc/app.conf")).expect("read"),
        "port=80\nhost=a\n"
    );
    assert_eq!(mode(&root.join("etc/app.conf")), 0o644);
    assert_eq!(mode(&root.join("bin/run.sh")), 0o755);
    assert!(temp_files(&root).is_empty());

    let inv = inventory_of(&["etc/app.conf", "bin/run.sh", "README"]);
    let again = target.plan(&v1, &inv, PRUNE).await.expect("plan");
    assert!(!again.has_changes(), "{:?}", ops(&again));
    assert!(again.tasks.iter().all(|t| t.diff.is_none()));
    let cs = target.apply(&again, PRUNE).await.expect("apply");
    assert_eq!(cs.count(Action::Unchanged), 3);

    // v2: app.conf changes, README leaves Git.
    let v2 = desired(vec![
        file("etc/app.conf", "port=8080\nhost=a\n", false),
        file("bin/run.sh", "#!/bin/sh\necho hi\n", true),
    ]);
    let without_prune = target.plan(&v2, &inv, NO_PRUNE).await.expect("plan");
    assert!(
        without_prune.tasks.iter().all(|t| t.op != TaskOp::Delete),
        "no prune, no delete"
    );
    let plan = target.plan(&v2, &inv, PRUNE).await.expect("plan");
    assert_eq!(
        ops(&plan),
        [
            ("bin/run.sh".to_owned(), TaskOp::Unchanged),
            ("etc/app.conf".to_owned(), TaskOp::Update),
            ("README".to_owned(), TaskOp::Delete),
        ]
    );
    let update = &plan.tasks[1];
    assert_eq!(
        update.diff.as_deref(),
        Some(
            "--- a/etc/app.conf\n+++ b/etc/app.conf\n@@ -1,2 +1,2 @@\n-port=80\n+port=8080\n host=a\n"
        )
    );
    assert_eq!(
        plan.tasks[2].diff.as_deref(),
        Some("--- a/README\n+++ /dev/null\n@@ -1 +0,0 @@\n-hello\n")
    );
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(
        actions(&cs),
        [
            ("bin/run.sh".to_owned(), Action::Unchanged, None),
            ("etc/app.conf".to_owned(), Action::Configured, None),
            ("README".to_owned(), Action::Deleted, None),
        ]
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/app.conf")).expect("read"),
        "port=8080\nhost=a\n"
    );
    assert!(!root.join("README").exists());
    assert!(root.is_dir());
}

#[tokio::test]
async fn executable_bit_changes_are_planned_and_applied() {
    let (_dir, root, target) = setup();
    let plain = desired(vec![file("tool", "#!/bin/sh\n", false)]);
    let plan = target
        .plan(&plain, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(mode(&root.join("tool")), 0o644);

    let exec = desired(vec![file("tool", "#!/bin/sh\n", true)]);
    let plan = target
        .plan(&exec, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    assert_eq!(ops(&plan), [("tool".to_owned(), TaskOp::Update)]);
    assert_eq!(
        plan.tasks[0].diff.as_deref(),
        Some("old mode 100644\nnew mode 100755\n"),
        "a mode change alone has no content diff"
    );
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(cs.count(Action::Configured), 1);
    assert_eq!(mode(&root.join("tool")), 0o755);

    // Someone chmods it behind our back: drift.
    fs::set_permissions(root.join("tool"), fs::Permissions::from_mode(0o644)).expect("chmod");
    let plan = target
        .plan(&exec, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    assert_eq!(ops(&plan), [("tool".to_owned(), TaskOp::Update)]);
    target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(mode(&root.join("tool")), 0o755);
}

#[tokio::test]
async fn writes_are_atomic_renames_that_leave_no_temp_files() {
    let (_dir, root, target) = setup();
    let v1 = desired(vec![file("data/state.json", "{\"v\":1}\n", false)]);
    let plan = target
        .plan(&v1, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    target.apply(&plan, PRUNE).await.expect("apply");
    let path = root.join("data/state.json");
    let inode_before = fs::metadata(&path).expect("meta").ino();
    // A reader that opened the old file keeps seeing the old bytes, whole.
    let old_handle = fs::File::open(&path).expect("open");

    let v2 = desired(vec![file(
        "data/state.json",
        "{\"v\":2,\"more\":true}\n",
        false,
    )]);
    let plan = target
        .plan(&v2, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    target.apply(&plan, PRUNE).await.expect("apply");

    let inode_after = fs::metadata(&path).expect("meta").ino();
    assert_ne!(
        inode_before, inode_after,
        "replaced by rename, not rewritten in place"
    );
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &old_handle, &mut old).expect("read old");
    assert_eq!(old, "{\"v\":1}\n");
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        "{\"v\":2,\"more\":true}\n"
    );
    assert!(temp_files(&root).is_empty(), "{:?}", temp_files(&root));
}

#[tokio::test]
async fn prune_touches_only_inventory_entries_and_empty_directories() {
    let (_dir, root, target) = setup();
    let v1 = desired(vec![
        file("shared/managed.conf", "m\n", false),
        file("solo/deep/only.conf", "o\n", false),
        file("top.conf", "t\n", false),
    ]);
    let plan = target
        .plan(&v1, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    target.apply(&plan, PRUNE).await.expect("apply");
    // Files nobody told driftless about.
    fs::write(root.join("shared/unmanaged.txt"), "mine\n").expect("write");
    fs::write(root.join("unmanaged-top.txt"), "mine too\n").expect("write");
    fs::create_dir_all(root.join("empty-unmanaged")).expect("mkdir");

    let inv = inventory_of(&["shared/managed.conf", "solo/deep/only.conf", "top.conf"]);
    let plan = target
        .plan(&desired(vec![]), &inv, PRUNE)
        .await
        .expect("plan");
    let planned: BTreeSet<String> = plan.tasks.iter().map(|t| t.id.name.clone()).collect();
    assert_eq!(
        planned,
        ["shared/managed.conf", "solo/deep/only.conf", "top.conf"]
            .map(str::to_owned)
            .into(),
        "only inventory entries are ever in a plan"
    );
    assert!(plan.tasks.iter().all(|t| t.op == TaskOp::Delete));
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(cs.count(Action::Deleted), 3, "{:?}", actions(&cs));

    assert_eq!(
        fs::read_to_string(root.join("shared/unmanaged.txt")).expect("kept"),
        "mine\n"
    );
    assert!(!root.join("shared/managed.conf").exists());
    assert!(
        root.join("shared").is_dir(),
        "directory with an unmanaged file stays"
    );
    assert!(
        !root.join("solo").exists(),
        "directories emptied by the prune go"
    );
    assert!(
        root.join("empty-unmanaged").is_dir(),
        "unrelated empty directory stays"
    );
    assert!(root.join("unmanaged-top.txt").is_file());
    assert!(root.is_dir(), "the root stays");

    // Pruning again: the files are already gone.
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(
        actions(&cs)[0],
        (
            "top.conf".to_owned(),
            Action::Deleted,
            Some("already absent".to_owned())
        )
    );
}

#[tokio::test]
async fn names_with_dotdot_or_absolute_are_refused() {
    let (dir, root, target) = setup();
    for (name, why) in [
        ("../escape.txt", "`..` would leave the target root"),
        ("a/../../escape.txt", "`..` would leave the target root"),
        ("/tmp/escape.txt", "absolute path"),
    ] {
        let err = target
            .plan(
                &desired(vec![file(name, "x", false)]),
                &Inventory::default(),
                PRUNE,
            )
            .await
            .expect_err("refused");
        assert!(matches!(err, TargetError::Unsupported(_)), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("{name:?}: refused: {why}")),
            "{err}"
        );

        // A plan made by hand (not by `plan`) is refused at apply too.
        let forged = Plan::new(
            "r",
            vec![Task {
                phase: 0,
                wave: 0,
                id: ObjectRef::file(name),
                op: TaskOp::Create,
                desired: Some(file(name, "x", false)),
                diff: None,
                changed_by: Vec::new(),
                conflict: false,
            }],
        );
        let cs = target.apply(&forged, PRUNE).await.expect("apply");
        let (_, action, detail) = &actions(&cs)[0];
        assert_eq!(*action, Action::Failed);
        assert!(
            detail.as_deref().expect("detail").contains(why),
            "{detail:?}"
        );
    }
    assert!(!dir.path().join("escape.txt").exists());
    assert!(
        fs::read_dir(&root).expect("root").next().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_symlinked_directory_inside_the_root_is_never_written_through() {
    let (dir, root, target) = setup();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("victim.conf"), "precious\n").expect("write");
    symlink(&outside, root.join("link")).expect("symlink");

    let err = target
        .plan(
            &desired(vec![file("link/victim.conf", "pwned\n", false)]),
            &Inventory::default(),
            PRUNE,
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "\"link/victim.conf\": refused: parent directory \"link\" is a symlink; \
         driftless never writes through symlinks"
    );

    // Forged plans: a write and a delete through the link both fail, nothing outside changes.
    let forged = Plan::new(
        "r",
        vec![
            Task {
                phase: 0,
                wave: 0,
                id: ObjectRef::file("link/new.conf"),
                op: TaskOp::Create,
                desired: Some(file("link/new.conf", "pwned\n", false)),
                diff: None,
                changed_by: Vec::new(),
                conflict: false,
            },
            Task {
                phase: 0,
                wave: 0,
                id: ObjectRef::file("link/victim.conf"),
                op: TaskOp::Delete,
                desired: None,
                diff: None,
                changed_by: Vec::new(),
                conflict: false,
            },
        ],
    );
    let cs = target.apply(&forged, PRUNE).await.expect("apply");
    assert!(
        cs.changes.iter().all(|c| c.action == Action::Failed),
        "{:?}",
        actions(&cs)
    );
    assert!(
        cs.changes.iter().all(|c| c
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("is a symlink"))),
        "{:?}",
        actions(&cs)
    );
    // Prune of an inventory entry behind the link is not even planned.
    let plan = target
        .plan(
            &desired(vec![]),
            &inventory_of(&["link/victim.conf"]),
            PRUNE,
        )
        .await
        .expect("plan");
    assert!(plan.tasks.is_empty(), "{:?}", ops(&plan));

    assert_eq!(
        fs::read_to_string(outside.join("victim.conf")).expect("read"),
        "precious\n"
    );
    assert!(!outside.join("new.conf").exists());
    assert_eq!(fs::read_dir(&outside).expect("dir").count(), 1);
}

#[tokio::test]
async fn a_symlink_at_a_managed_path_is_replaced_not_followed() {
    let (dir, root, target) = setup();
    let secret = dir.path().join("secret.txt");
    fs::write(&secret, "top secret outside the root\n").expect("write");
    symlink(&secret, root.join("app.conf")).expect("symlink");

    let want = desired(vec![file("app.conf", "port=80\n", false)]);
    let plan = target
        .plan(&want, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    assert_eq!(ops(&plan), [("app.conf".to_owned(), TaskOp::Update)]);
    let diff = plan.tasks[0].diff.as_deref().expect("diff");
    assert!(
        !diff.contains("top secret"),
        "never read through the link: {diff}"
    );
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(cs.count(Action::Configured), 1);
    let meta = fs::symlink_metadata(root.join("app.conf")).expect("meta");
    assert!(meta.file_type().is_file());
    assert_eq!(
        fs::read_to_string(&secret).expect("read"),
        "top secret outside the root\n"
    );
}

#[tokio::test]
async fn a_directory_where_a_file_should_be_fails_that_file_only() {
    let (_dir, root, target) = setup();
    fs::create_dir_all(root.join("conf/sub")).expect("mkdir");
    let want = desired(vec![
        file("conf", "x\n", false),
        file("other", "y\n", false),
    ]);
    let plan = target
        .plan(&want, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(
        actions(&cs),
        [
            (
                "conf".to_owned(),
                Action::Failed,
                Some(
                    "\"conf\" is a directory; remove it to let driftless write the file".to_owned()
                )
            ),
            ("other".to_owned(), Action::Created, None),
        ]
    );
    assert!(root.join("conf/sub").is_dir());
}

#[tokio::test]
async fn manifests_are_refused_with_their_origin() {
    let (_dir, _root, target) = setup();
    let obj = Object {
        id: ObjectRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: "api".into(),
        },
        content: Content::Manifest(serde_json::json!({"kind": "Deployment"})),
        origin: Origin {
            file: "deploy.yaml".into(),
            line: 3,
            column: 1,
        },
    };
    let err = target
        .plan(&desired(vec![obj]), &Inventory::default(), PRUNE)
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "web/Deployment.apps/api: the files target only takes files, not Deployment objects \
         (from deploy.yaml:3:1)"
    );
    let manifest_file = Object {
        id: ObjectRef::file("x.yaml"),
        content: Content::Manifest(serde_json::json!({})),
        origin: Origin::default(),
    };
    let err = target
        .plan(&desired(vec![manifest_file]), &Inventory::default(), PRUNE)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not manifests"), "{err}");
}

#[test]
fn new_creates_the_root_and_refuses_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("a/b/root");
    let target = FilesTarget::new(root.clone(), None).expect("created");
    assert!(root.is_dir());
    assert_eq!(
        target.describe(),
        format!("files:{}", root.canonicalize().expect("abs").display())
    );

    let file = dir.path().join("plain");
    fs::write(&file, "x").expect("write");
    let err = FilesTarget::new(file.clone(), None).expect_err("not a dir");
    assert_eq!(
        err.to_string(),
        format!(
            "files target root {} exists and is not a directory",
            file.display()
        )
    );
    let err = FilesTarget::new(root, Some(vec![])).expect_err("empty command");
    assert_eq!(
        err.to_string(),
        "postSync: the command is empty; give a program and its arguments"
    );
}

#[tokio::test]
async fn health_is_healthy_when_present_and_missing_when_absent() {
    let (_dir, root, target) = setup();
    fs::write(root.join("here"), "x").expect("write");
    fs::create_dir(root.join("dir")).expect("mkdir");
    let ids = [
        ObjectRef::file("here"),
        ObjectRef::file("gone"),
        ObjectRef::file("dir"),
    ];
    let health = target.health(&ids).await.expect("health");
    let got: Vec<_> = health
        .iter()
        .map(|h| (h.id.name.as_str(), h.health))
        .collect();
    assert_eq!(
        got,
        [
            ("here", Health::Healthy),
            ("gone", Health::Missing),
            ("dir", Health::Degraded)
        ]
    );
    assert_eq!(health[1].message.as_deref(), Some("file is missing"));
}

/// Waits up to 5 s for an event on `name`, returning everything received meanwhile.
fn wait_for(rx: &mpsc::Receiver<DriftEvent>, name: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(ev) => {
                seen.push(ev.id.name.clone());
                if ev.id.name == name {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no event for {name} within 5 s; saw {seen:?}");
}

#[tokio::test]
async fn watch_reports_edits_of_managed_files_only() {
    let (_dir, root, target) = setup();
    let want = desired(vec![
        file("a.conf", "a\n", false),
        file("sub/b.conf", "b\n", false),
    ]);
    let plan = target
        .plan(&want, &Inventory::default(), PRUNE)
        .await
        .expect("plan");
    target.apply(&plan, PRUNE).await.expect("apply");
    let managed: BTreeSet<ObjectRef> = want.ids();

    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let notifier: driftless_model::DriftNotifier = Arc::new(move |ev: DriftEvent| {
        let _ = tx.lock().expect("sender").send(ev);
    });
    let guard = target
        .watch(managed.clone(), Arc::clone(&notifier))
        .await
        .expect("watch");

    // Unmanaged changes first, then a managed edit: only the managed one may show.
    fs::write(root.join("unmanaged.txt"), "noise\n").expect("write");
    fs::write(root.join("sub/unmanaged.txt"), "noise\n").expect("write");
    fs::write(root.join("a.conf"), "edited behind driftless's back\n").expect("write");
    let seen = wait_for(&rx, "a.conf");
    assert!(seen.iter().all(|n| n == "a.conf"), "{seen:?}");

    // Deleting a managed file's directory reports the file.
    fs::remove_dir_all(root.join("sub")).expect("rm -r");
    let seen = wait_for(&rx, "sub/b.conf");
    assert!(
        seen.iter()
            .all(|n| managed.contains(&ObjectRef::file(n.as_str()))),
        "{seen:?}"
    );

    // Dropping the guard stops the watcher: its thread lets go of the notifier.
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&notifier) > 1 {
        assert!(
            Instant::now() < deadline,
            "watcher still running after its guard was dropped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn post_sync_runs_in_the_root_and_records_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let sh = |script: &str| Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]);

    let none = FilesTarget::new(root.clone(), None).expect("target");
    assert!(none.run_post_sync().await.is_none());

    let ok = FilesTarget::new(root.clone(), sh("echo out; echo err >&2; pwd")).expect("target");
    let res = ok.run_post_sync().await.expect("configured");
    assert!(res.success);
    assert_eq!(res.exit_code, Some(0));
    let canonical = root.canonicalize().expect("abs");
    assert_eq!(res.output, format!("out\nerr\n{}\n", canonical.display()));

    let failing = FilesTarget::new(root.clone(), sh("echo reloading; exit 3")).expect("target");
    let res = failing.run_post_sync().await.expect("configured");
    assert!(!res.success);
    assert_eq!(res.exit_code, Some(3));
    assert_eq!(res.output, "reloading\n");

    let missing =
        FilesTarget::new(root.clone(), Some(vec!["/nonexistent/reload".into()])).expect("target");
    let res = missing.run_post_sync().await.expect("configured");
    assert!(!res.success);
    assert_eq!(res.exit_code, None);
    assert!(
        res.output
            .starts_with("[driftless: cannot run \"/nonexistent/reload\": "),
        "{}",
        res.output
    );
}

#[tokio::test]
async fn post_sync_times_out_and_truncates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let sh = |script: &str| Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]);

    let slow = FilesTarget::new(root.clone(), sh("echo started; exec sleep 30"))
        .expect("target")
        .with_post_sync_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let res = slow.run_post_sync().await.expect("configured");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!res.success);
    assert_eq!(res.exit_code, None);
    assert_eq!(
        res.output,
        "started\n[driftless: postSync timed out after 300ms and was killed]"
    );

    let chatty = FilesTarget::new(root, sh("i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789012345678901234567890123; i=$((i+1)); done"))
        .expect("target");
    let res = chatty.run_post_sync().await.expect("configured");
    assert!(res.success);
    assert!(res.output.len() < 70 * 1024, "{}", res.output.len());
    assert!(
        res.output
            .ends_with("[driftless: output truncated to 65536 bytes; 64464 more bytes dropped]\n"),
        "{}",
        &res.output[res.output.len() - 200..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_mid_sync_never_redirects_a_write() {
    let (dir, root, target) = setup();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("victim.conf"), "precious\n").expect("write");

    // Another process keeps swapping root/d between a real directory and a symlink to
    // `outside`, as fast as it can, while driftless writes and deletes under d/.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (root, outside, stop) = (root.clone(), outside.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let d = root.join("d");
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match fs::symlink_metadata(&d) {
                    Ok(m) if m.file_type().is_symlink() => {
                        let _ = fs::remove_file(&d);
                        let _ = fs::create_dir(&d);
                    }
                    Ok(_) => {
                        let _ = fs::remove_dir_all(&d);
                        let _ = symlink(&outside, &d);
                    }
                    Err(_) => {
                        let _ = symlink(&outside, &d);
                    }
                }
                swaps += 1;
            }
            swaps
        })
    };
    let forged = Plan::new(
        "r",
        vec![
            Task {
                phase: 0,
                wave: 0,
                id: ObjectRef::file("d/new.conf"),
                op: TaskOp::Create,
                desired: Some(file("d/new.conf", "pwned\n", false)),
                diff: None,
                changed_by: Vec::new(),
                conflict: false,
            },
            Task {
                phase: 0,
                wave: 0,
                id: ObjectRef::file("d/victim.conf"),
                op: TaskOp::Delete,
                desired: None,
                diff: None,
                changed_by: Vec::new(),
                conflict: false,
            },
        ],
    );
    let mut written = 0;
    for _ in 0..400 {
        let cs = target.apply(&forged, PRUNE).await.expect("apply");
        written += cs.count(Action::Created) + cs.count(Action::Configured);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 100, "the race was exercised ({swaps} swaps)");
    eprintln!("{swaps} swaps, {written} of 400 writes landed in the real directory");
    assert_eq!(
        fs::read_to_string(outside.join("victim.conf")).expect("read"),
        "precious\n"
    );
    let names: Vec<_> = fs::read_dir(&outside)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        ["victim.conf"],
        "nothing written or deleted outside the root"
    );
}

#[tokio::test]
async fn a_file_where_a_directory_should_be_is_refused() {
    let (_dir, root, target) = setup();
    fs::write(root.join("a.conf"), "plain file\n").expect("write");
    let err = target
        .plan(
            &desired(vec![file("a.conf/b", "x", false)]),
            &Inventory::default(),
            PRUNE,
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "\"a.conf/b\": refused: \"a.conf\" is a file, not a directory"
    );
    assert_eq!(
        fs::read_to_string(root.join("a.conf")).expect("read"),
        "plain file\n"
    );
}

#[tokio::test]
async fn a_fifo_at_a_managed_path_is_neither_read_nor_replaced() {
    let (_dir, root, target) = setup();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let want = desired(vec![file("pipe", "x\n", false)]);
    // Reading a FIFO would block for ever; the plan must come back at once.
    let plan = tokio::time::timeout(
        Duration::from_secs(5),
        target.plan(&want, &Inventory::default(), PRUNE),
    )
    .await
    .expect("plan does not block")
    .expect("plan");
    assert_eq!(ops(&plan), [("pipe".to_owned(), TaskOp::Update)]);
    assert_eq!(
        plan.tasks[0].diff.as_deref(),
        Some("pipe: live path is a socket, FIFO or device; a regular file is desired\n")
    );
    let cs = target.apply(&plan, PRUNE).await.expect("apply");
    assert_eq!(
        actions(&cs),
        [(
            "pipe".to_owned(),
            Action::Failed,
            Some("\"pipe\" is a socket, FIFO or device; not replacing it".to_owned())
        )]
    );
    let health = target
        .health(&[ObjectRef::file("pipe")])
        .await
        .expect("health");
    assert_eq!(health[0].health, Health::Degraded);
}

/// Regression: each target used to open its own inotify instance, and the kernel allows
/// 128 per user by default, so most of 1,000 apps got no drift watch at all.
#[tokio::test]
async fn hundreds_of_targets_share_one_watch_and_events_reach_only_their_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = mpsc::channel::<(usize, DriftEvent)>();
    let tx = std::sync::Mutex::new(tx);
    let tx = Arc::new(tx);
    let mut guards = Vec::new();
    let mut roots = Vec::new();
    for n in 0..300 {
        let root = dir.path().join(format!("app-{n}"));
        let target = FilesTarget::new(root.clone(), None).expect("target");
        let want = desired(vec![file("app.conf", "x\n", false)]);
        let plan = target
            .plan(&want, &Inventory::default(), PRUNE)
            .await
            .expect("plan");
        target.apply(&plan, PRUNE).await.expect("apply");
        let tx = Arc::clone(&tx);
        let notifier: driftless_model::DriftNotifier = Arc::new(move |ev: DriftEvent| {
            let _ = tx.lock().expect("sender").send((n, ev));
        });
        guards.push(
            target
                .watch(want.ids(), notifier)
                .await
                .expect("watch number {n}"),
        );
        roots.push(root);
    }
    // Let the events of our own applies pass, then edit two apps' files.
    while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    fs::write(roots[299].join("app.conf"), "edited\n").expect("edit");
    fs::write(roots[7].join("app.conf"), "edited\n").expect("edit");
    let mut owners = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while owners.len() < 2 && Instant::now() < deadline {
        if let Ok((owner, ev)) = rx.recv_timeout(Duration::from_millis(100)) {
            assert_eq!(ev.id.name, "app.conf");
            owners.insert(owner);
        }
    }
    assert_eq!(
        owners,
        BTreeSet::from([7, 299]),
        "events must reach exactly the apps edited"
    );
}
