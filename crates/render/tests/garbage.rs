//! Arbitrary bytes never panic: every input renders or fails with located errors.

mod common;

use common::MemTree;
use driftless_render::{Limits, render_manifests, to_yaml};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const PIECES: &[&str] = &[
    "apiVersion: v1\n",
    "kind: ConfigMap\n",
    "metadata:\n",
    "  name: x\n",
    "---\n",
    "...\n",
    "- ",
    ": ",
    "? ",
    "&a ",
    "*a ",
    "<<: ",
    "!!str ",
    "!!int ",
    "!t ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "|",
    ">",
    "#",
    "\n",
    "  ",
    "\t",
    "yes",
    "0x1F",
    "1e3",
    "~",
    "é",
    "\u{feff}",
    "\\",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "a",
    "b",
    "1",
];

#[test]
fn random_yaml_like_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limits = Limits {
        max_alias_expansion: 1000,
        ..Limits::default()
    };
    let mut rendered = 0;
    for case in 0..3000 {
        let n = 1 + (rng.next() % if case % 2 == 0 { 40 } else { 6 }) as usize;
        let noise: String = (0..n)
            .map(|_| PIECES[(rng.next() % PIECES.len() as u64) as usize])
            .collect();
        // Half pure noise, half noise inside a valid document's value.
        let text = if case % 2 == 0 {
            noise
        } else {
            let value: String = noise.chars().filter(|c| *c != '\n').collect();
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nv: {value}\n")
        };
        let name = if case % 5 == 0 { "g.json" } else { "g.yaml" };
        let tree = MemTree::new().file(name, &text);
        match render_manifests(&tree, "", &limits) {
            Ok(objects) => {
                rendered += objects.len();
                // Whatever rendered prints and reads back the same.
                let yaml = to_yaml(&objects);
                let again = render_manifests(&MemTree::new().file("o.yaml", &yaml), "", &limits)
                    .unwrap_or_else(|e| {
                        panic!("case {case}: {text:?}\nre-parse failed: {e}\n{yaml}")
                    });
                let a: Vec<_> = objects.iter().map(|o| &o.content).collect();
                let b: Vec<_> = again.iter().map(|o| &o.content).collect();
                assert_eq!(a, b, "case {case}: {text:?}");
            }
            Err(errors) => {
                for e in &errors.0 {
                    assert_eq!(e.origin.file, name, "case {case}: {text:?}: {e}");
                }
            }
        }
    }
    // The generator must reach the success path often enough to mean something.
    assert!(rendered > 250, "only {rendered} objects rendered");
}
