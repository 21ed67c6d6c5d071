//! Render (plain YAML and JSON, SOPS detection and decryption, printing) on generated
//! and mutated manifests, through `render_source_with` as the daemon calls it.

use driftless_fuzz::{MemTree, fuzz, input};
use driftless_render::{
    Decryption, Identities, Limits, render_files_with, render_source_with, to_json, to_yaml,
};

/// The identity the seed files in `seeds/` are encrypted for (a test key).
pub const KEY: &str = "AGE-SECRET-KEY-13PZ06RVPNJY9QTJ4Z7HM50ZHY0Q2HRF6MXLSF7D44DKCZGWRZ3USXN9Q52";

fn tree(rng: &mut fastrand::Rng) -> MemTree {
    let mut t = MemTree::default();
    for i in 0..rng.usize(1..4) {
        let (name, data) = match rng.u8(..5) {
            0 => (format!("app/f{i}.json"), input::json_file(rng).into_bytes()),
            1 | 2 => (format!("app/f{i}.yaml"), input::yaml_file(rng).into_bytes()),
            _ => {
                let (p, mut d) = input::seed_file(rng, None);
                if rng.u8(..4) != 0 {
                    input::mutate(rng, &mut d);
                }
                let ext = if p.ends_with(".json") { "json" } else { "yaml" };
                (format!("app/s{i}.{ext}"), d)
            }
        };
        t = t.with(&name, data);
    }
    t
}

#[test]
fn render_never_panics_overflows_or_hangs() {
    fuzz("render", tree, MemTree::describe, |t| {
        let d = Decryption::new(Identities::parse(KEY).map_err(|e| e.to_string())?);
        let limits = Limits::default();
        // Files mode reads (and decrypts) every file; an internal error there fails the
        // input even when the manifests render is fine.
        if let Err(e) = render_files_with(t, "app", &limits, Some(&d)) {
            let e = e.to_string();
            if e.contains("internal error") || e.trim().is_empty() {
                return Err(e);
            }
        }
        let r = render_source_with(t, "app", &limits, Some(&d)).map_err(|e| e.to_string())?;
        let _ = to_yaml(&r.objects);
        let _ = to_json(&r.objects);
        Ok(())
    });
}
