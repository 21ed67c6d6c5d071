//! Native kustomize on damaged copies of its differential cases and on generated
//! kustomizations with hostile fields, directly and through render.

use driftless_fuzz::{MemTree, fuzz, input};
use driftless_render::{Limits, render_source_with, to_yaml};

#[test]
fn kustomize_never_panics_overflows_or_hangs() {
    fuzz("kustomize", input::kustomization, MemTree::describe, |t| {
        let limits = Limits::default();
        let direct = driftless_kustomize::build_with(t, "", &limits).map(|b| {
            let _ = b.objects();
            b.to_yaml()
        });
        let rendered = render_source_with(t, "", &limits, None)
            .map(|r| to_yaml(&r.objects))
            .map_err(|e| e.to_string());
        // Render adds checks of its own (ids, SOPS metadata) but never accepts what the
        // build refused (a folder without a kustomization renders as plain manifests).
        let is_kustomization = driftless_kustomize::is_kustomization_dir(t, "").unwrap_or(false);
        if is_kustomization && direct.is_err() && rendered.is_ok() {
            return Err(format!(
                "internal error: render accepted what kustomize refused: {}",
                direct.err().map(|e| e.to_string()).unwrap_or_default()
            ));
        }
        if is_kustomization {
            direct.map(|_| ()).map_err(|e| e.to_string())?;
        }
        rendered.map(|_| ())
    });
}
