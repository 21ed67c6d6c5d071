//! A local-folder source read while someone swaps a directory for a symlink to outside
//! the folder (issue 14, item 11): every read returns the folder's own content or an
//! error, never the outside file.

use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use driftless_model::Tree;
use driftless_source::DirTree;

const INSIDE: &[u8] = b"inside\n";
const OUTSIDE: &[u8] = b"OUTSIDE-SECRET\n";

#[test]
fn a_directory_replaced_by_a_symlink_between_listing_and_reading_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("conf")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(root.join("conf/app.yaml"), INSIDE).expect("write");
    std::fs::write(outside.join("app.yaml"), OUTSIDE).expect("write");
    let tree = DirTree::new(root.clone()).expect("tree");

    let listed = tree.list("conf").expect("list");
    assert_eq!(listed.len(), 1);
    // Swap: the listed directory is now a symlink to a folder outside the root.
    std::fs::rename(root.join("conf"), tmp.path().join("conf.real")).expect("move away");
    symlink(&outside, root.join("conf")).expect("symlink");
    let err = tree.read("conf/app.yaml").expect_err("through a symlink");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(
        tree.list("conf").is_err(),
        "listing through it is refused too"
    );
    assert_eq!(tree.kind("conf/app.yaml").expect("kind"), None);
}

#[test]
fn a_symlink_swapped_in_during_reads_never_redirects_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    let parked = tmp.path().join("parked");
    std::fs::create_dir_all(root.join("conf")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(root.join("conf/app.yaml"), INSIDE).expect("write");
    std::fs::write(outside.join("app.yaml"), OUTSIDE).expect("write");
    let tree = DirTree::new(root.clone()).expect("tree");

    // Flip conf between the real directory and a symlink to outside as fast as possible.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, root, outside, parked) =
            (stop.clone(), root.clone(), outside.clone(), parked.clone());
        std::thread::spawn(move || {
            let conf = root.join("conf");
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&conf, &parked).expect("park the dir");
                symlink(&outside, &conf).expect("plant the symlink");
                std::fs::remove_file(&conf).expect("remove the symlink");
                std::fs::rename(&parked, &conf).expect("restore the dir");
                flips += 1;
            }
            flips
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut good, mut refused) = (0u64, 0u64);
    while Instant::now() < deadline {
        match tree.read("conf/app.yaml") {
            Ok(bytes) => {
                assert_eq!(bytes, INSIDE, "a read was redirected outside the root");
                good += 1;
            }
            Err(_) => refused += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().expect("flipper");
    assert!(flips > 100, "the swap ran ({flips} flips)");
    assert!(
        good + refused > 100,
        "reads ran ({good} good, {refused} refused)"
    );
}
