//! Property test: random kustomizations (random field combinations over a small tree,
//! plus byte-level mutations of the inputs) never make the build panic. Deterministic:
//! a failing seed is printed and reproducible.

mod common;

use std::path::PathBuf;

use common::DirTree;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const RESOURCES: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1\n        envFrom:\n        - configMapRef: {name: cfg}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n";

const FIELDS: &[&str] = &[
    "namespace: ns1\n",
    "namePrefix: p-\n",
    "nameSuffix: -s\n",
    "commonLabels:\n  a: b\n",
    "labels:\n- pairs: {x: y1}\n  includeSelectors: true\n",
    "commonAnnotations:\n  n: v\n",
    "images:\n- name: nginx\n  newTag: \"2\"\n",
    "replicas:\n- name: web\n  count: 4\n",
    "configMapGenerator:\n- name: gen\n  literals: [k=v]\n",
    "configMapGenerator:\n- name: cfg\n  behavior: merge\n  literals: [k=v]\n",
    "secretGenerator:\n- name: s\n  literals: [k=v]\n",
    "generatorOptions:\n  disableNameSuffixHash: true\n",
    "patches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec: {replicas: 2}\n",
    "patches:\n- target: {kind: Deployment}\n  patch: |-\n    - op: add\n      path: /spec/paused\n      value: true\n",
    "patches:\n- target: {kind: Service}\n  patch: |-\n    - op: remove\n      path: /spec/nothing\n",
    "patchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: Service\n  metadata: {name: web}\n  $patch: delete\n",
    "components:\n- comp\n",
    "sortOptions: {order: fifo}\n",
    "helmCharts: []\n",
    "resources:\n- ../outside\n",
    "resources:\n- .\n",
    "crds: []\n",
    "replacements:\n- source: {kind: ConfigMap, name: cfg, fieldPath: data.a}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [spec.template.spec.containers.0.image]\n",
    "replacements:\n- source: {kind: Service, name: web}\n  targets:\n  - select: {kind: ConfigMap}\n    fieldPaths: [data.x.y]\n    options: {create: true, delimiter: '-', index: 3}\n",
    "vars:\n- name: V\n  objref: {kind: Service, name: web, apiVersion: v1}\n",
    "buildMetadata: [managedByLabel]\n",
    "configurations: [conf.yaml]\n",
    "patches:\n- target: {labelSelector: \"app in (web\"}\n  patch: '[]'\n",
    "patches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec: {template: {spec: {containers: [{$patch: replace}, {name: z}]}}}\n",
];

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("driftless-kz-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("comp")).expect("mkdir");
    d
}

#[test]
fn random_kustomizations_never_panic() {
    let dir = tmpdir("fields");
    std::fs::write(
        dir.join("comp/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  c: d\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("conf.yaml"),
        "nameReference:\n- kind: Service\n  fieldSpecs:\n  - path: data/svc\n    kind: ConfigMap\n",
    )
    .expect("write");
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for iter in 0..1000 {
        let seed = rng.0;
        let n = 1 + rng.below(6);
        let mut k = String::from("resources:\n- r.yaml\n");
        for _ in 0..n {
            let f = rng.pick(FIELDS);
            if f.starts_with("resources:") {
                k.push_str(&f["resources:\n".len()..]);
            } else {
                k.push_str(f);
            }
        }
        let mut res = RESOURCES.as_bytes().to_vec();
        // Sometimes mutate bytes of the inputs.
        if rng.below(3) == 0 {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(res.len());
                let alphabet = b" :-[]{}\n#&*!|>'\"%@`a0";
                res[i] = alphabet[rng.below(alphabet.len())];
            }
        }
        let mut kb = k.into_bytes();
        if rng.below(4) == 0 {
            let i = rng.below(kb.len());
            let alphabet = b" :-[]{}\n#&*a0";
            kb[i] = alphabet[rng.below(alphabet.len())];
        }
        std::fs::write(dir.join("r.yaml"), &res).expect("write");
        std::fs::write(dir.join("kustomization.yaml"), &kb).expect("write");
        let tree = DirTree(dir.clone());
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(b) = driftless_kustomize::build(&tree, "") {
                let _ = b.to_yaml();
                let _ = b.objects();
            }
        });
        assert!(
            outcome.is_ok(),
            "panic at iteration {iter} (seed {seed:#x}) with kustomization:\n{}\nresources:\n{}",
            String::from_utf8_lossy(&kb),
            String::from_utf8_lossy(&res)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
