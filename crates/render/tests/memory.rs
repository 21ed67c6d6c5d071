//! Memory stays proportional to the input: anchors are shared, not copied, and alias
//! copies are capped. Measured as the process's peak resident set (Linux `VmHWM`), in a
//! test binary of its own with a single test so that nothing else is counted.

mod common;

use common::MemTree;
use driftless_render::{Limits, render_manifests};

/// Peak resident set size of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

#[test]
fn nested_anchors_around_a_large_list_are_not_copied() {
    // 200 anchors nested around a list of 100,000 numbers (~0.2 MiB of YAML). Copying
    // each anchored node would mean 20 million nodes (gigabytes); sharing keeps it at
    // one copy of the list.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\nv: ");
    for i in 0..200 {
        text.push_str(&format!("&a{i} ["));
    }
    text.push_str(&vec!["1"; 100_000].join(","));
    text.push_str(&"]".repeat(200));
    text.push('\n');
    let tree = MemTree::new().file("big.yaml", &text);

    let limits = Limits {
        max_depth: 300,
        ..Limits::default()
    };
    let objs = render_manifests(&tree, "", &limits).expect("renders");
    assert_eq!(objs.len(), 1);
    // A positioned copy and a JSON copy of 100,000 nodes take tens of MiB at most.
    let peak = peak_rss_kib();
    assert!(peak < 200 * 1024, "peak resident set {} MiB", peak / 1024);
}
