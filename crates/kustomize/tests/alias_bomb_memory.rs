//! A "billion laughs" resource fails with bounded memory, measured as this process's peak
//! resident set (Linux `VmHWM`), in a test binary of its own so that nothing else counts.
//! The reviewer saw a nine-level bomb reach 7 GB before kustomize had limits.

use std::collections::BTreeMap;

use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};

struct Two(BTreeMap<&'static str, String>);

impl Tree for Two {
    fn list(&self, _dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        Ok(self
            .0
            .iter()
            .map(|(n, d)| TreeEntry {
                name: (*n).to_owned(),
                kind: EntryKind::File {
                    executable: false,
                    size: d.len() as u64,
                },
            })
            .collect())
    }
    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        self.0
            .get(path)
            .map(|d| d.clone().into_bytes())
            .ok_or_else(|| TreeError::NotFound(path.to_owned()))
    }
    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        Ok(self.0.get(path).map(|d| EntryKind::File {
            executable: false,
            size: d.len() as u64,
        }))
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

#[test]
fn a_nine_level_alias_bomb_fails_within_a_small_memory_bound() {
    let mut bomb = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n");
    bomb.push_str("  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..=9 {
        let prev = format!("*a{}", i - 1);
        bomb.push_str(&format!(
            "  a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(",")
        ));
    }
    let tree = Two(BTreeMap::from([
        ("kustomization.yaml", "resources: [bomb.yaml]\n".to_owned()),
        ("bomb.yaml", bomb),
    ]));
    let start = std::time::Instant::now();
    let e = driftless_kustomize::build(&tree, "").expect_err("refused");
    let took = start.elapsed();
    assert!(
        e.to_string()
            .contains("aliases expand to more than 100000 nodes"),
        "{e}"
    );
    assert!(took.as_millis() < 1000, "took {took:?}");
    let peak = peak_rss_kib();
    assert!(peak < 100 * 1024, "peak resident set {} MiB", peak / 1024);
}
