//! Every bad input driftless refuses, with the message a user sees: the kustomization
//! file (and line:col where known) and the field.

mod common;

use std::path::PathBuf;

use common::DirTree;

fn tree(tag: &str, files: &[(&str, &str)]) -> (PathBuf, DirTree) {
    let d = std::env::temp_dir().join(format!("driftless-kz-err-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    for (p, c) in files {
        let f = d.join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(f, c).expect("write");
    }
    (d.clone(), DirTree(d))
}

fn err(tag: &str, dir: &str, files: &[(&str, &str)]) -> String {
    let (d, t) = tree(tag, files);
    let e = driftless_kustomize::build(&t, dir)
        .expect_err("build must fail")
        .to_string();
    let _ = std::fs::remove_dir_all(d);
    e
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

#[test]
fn unsupported_field_is_named() {
    let e = err(
        "helm",
        "apps/web",
        &[("apps/web/kustomization.yaml", "helmCharts:\n- name: x\n")],
    );
    assert_eq!(
        e,
        "apps/web/kustomization.yaml: field helmCharts is not supported"
    );
}

#[test]
fn remote_resource_is_unsupported() {
    let e = err(
        "remote",
        "",
        &[(
            "kustomization.yaml",
            "resources:\n- https://example.com/x\n",
        )],
    );
    assert!(
        e.starts_with("kustomization.yaml: field resources (remote"),
        "{e}"
    );
    assert!(e.ends_with("is not supported"), "{e}");
}

#[test]
fn escaping_the_root_is_refused() {
    let e = err(
        "escape",
        "",
        &[("kustomization.yaml", "resources:\n- ../../etc/x.yaml\n")],
    );
    assert_eq!(
        e,
        "kustomization.yaml: field resources: \"../../etc/x.yaml\" is outside the repository root"
    );
}

#[test]
fn file_outside_the_kustomization_dir_is_refused() {
    let e = err(
        "outside",
        "a",
        &[
            ("a/kustomization.yaml", "resources:\n- ../c.yaml\n"),
            ("c.yaml", CM),
        ],
    );
    assert_eq!(
        e,
        "a/kustomization.yaml: field resources: \"../c.yaml\" is outside the repository root"
    );
}

#[test]
fn cycles_are_detected() {
    let e = err(
        "cycle",
        "a",
        &[
            ("a/kustomization.yaml", "resources:\n- ../b\n"),
            ("b/kustomization.yaml", "resources:\n- ../a\n"),
        ],
    );
    assert_eq!(
        e,
        "b/kustomization.yaml: field resources: cycle detected: a -> b -> a"
    );
}

#[test]
fn yaml_errors_carry_file_line_and_column() {
    let e = err(
        "yaml",
        "",
        &[
            ("kustomization.yaml", "resources:\n- r.yaml\n"),
            ("r.yaml", "kind: ConfigMap\nmetadata:\n  name: [\n"),
        ],
    );
    assert!(e.starts_with("r.yaml:4:"), "{e}");
}

#[test]
fn yaml11_booleans_in_string_fields_are_refused_like_kustomize() {
    let e = err(
        "bool",
        "",
        &[
            (
                "kustomization.yaml",
                "resources:\n- c.yaml\nnamespace: no\n",
            ),
            ("c.yaml", CM),
        ],
    );
    assert_eq!(
        e,
        "kustomization.yaml:3:12: field namespace: \"no\" is not a string (quote it)"
    );
}

#[test]
fn missing_kustomization_is_reported() {
    let e = err(
        "none",
        "",
        &[
            ("kustomization.yaml", "resources:\n- d\n"),
            ("d/c.yaml", CM),
        ],
    );
    assert_eq!(
        e,
        "d: no kustomization.yaml, kustomization.yml or Kustomization found"
    );
}

#[test]
fn patch_without_target_match_names_the_patch() {
    let e = err(
        "patch",
        "",
        &[
            (
                "kustomization.yaml",
                "resources:\n- c.yaml\npatches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: other\n",
            ),
            ("c.yaml", CM),
        ],
    );
    assert_eq!(
        e,
        "kustomization.yaml: field patches: failed to find unique target for patch ConfigMap other"
    );
}

#[test]
fn is_kustomization_dir_sees_all_three_names() {
    for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
        let (d, t) = tree(
            &format!("is-{}", name.len()),
            &[(name, "resources: []\n"), ("plain/x.yaml", CM)],
        );
        assert!(driftless_kustomize::is_kustomization_dir(&t, "").expect("lookup"));
        assert!(!driftless_kustomize::is_kustomization_dir(&t, "plain").expect("lookup"));
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn symlink_leaving_the_root_is_refused() {
    let (d, t) = tree(
        "symlink",
        &[("kustomization.yaml", "resources:\n- link.yaml\n")],
    );
    std::os::unix::fs::symlink("../../../../etc/hostname", d.join("link.yaml")).expect("symlink");
    let e = driftless_kustomize::build(&t, "")
        .expect_err("must fail")
        .to_string();
    let _ = std::fs::remove_dir_all(d);
    assert_eq!(
        e,
        "kustomization.yaml: field resources: \"link.yaml\" is outside the repository root"
    );
}

/// Regression: an ambiguous reference in a list of maps (`subjects`) was left as written.
#[test]
fn ambiguous_name_reference_names_referrer_field_and_candidates() {
    let sa = |n: &str| {
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
             metadata:\n  name: crb-{n}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  \
             kind: ClusterRole\n  name: view\nsubjects:\n- kind: ServiceAccount\n  name: sa\n"
        )
    };
    let (a, b) = (sa("a"), sa("b"));
    let e = err(
        "nameref-ambiguous",
        "top",
        &[
            ("top/kustomization.yaml", "resources:\n- ../a\n- ../b\n"),
            (
                "a/kustomization.yaml",
                "namespace: a\nresources:\n- sa.yaml\n",
            ),
            ("a/sa.yaml", &a),
            (
                "b/kustomization.yaml",
                "namespace: b\nresources:\n- sa.yaml\n",
            ),
            ("b/sa.yaml", &b),
        ],
    );
    assert_eq!(
        e,
        "top/kustomization.yaml: field resources: the name reference in ClusterRoleBinding \
         crb-a, field subjects, has multiple possible referrals for ServiceAccount \"sa\": \
         ServiceAccount a/sa, ServiceAccount b/sa"
    );
}
