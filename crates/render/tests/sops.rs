//! SOPS decryption while rendering, against the real `sops`, `age-keygen` and `kustomize`:
//! files are encrypted by `sops encrypt --age`, and every expectation comes from `sops -d`
//! (and `kustomize build`) run on a decrypted copy of the same tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_model::{Content, Object};
use driftless_render::{
    Decryption, Identities, Limits, RenderErrorKind, Rendered, render_files, render_files_with,
    render_source, render_source_with,
};
use driftless_source::DirTree;

/// The directory holding the real tools. Panics when unset: these tests never skip.
fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("DRIFTLESS_TESTENV_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .expect("set DRIFTLESS_TESTENV_BIN=$(testenv/build | tail -n1): these tests run the real sops, age-keygen and kustomize");
    let path = dir.join(name);
    assert!(path.is_file(), "{} has no {name}", dir.display());
    path
}

struct Key {
    file: PathBuf,
    recipient: String,
}

fn keygen(dir: &Path, name: &str) -> Key {
    let file = dir.join(format!("{name}.agekey"));
    let out = Command::new(tool("age-keygen"))
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run age-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("key file");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_owned();
    Key { file, recipient }
}

/// A work area: `repo/` holds the tree to render (some files encrypted), `plain/` a copy
/// in which every encrypted file was replaced by what `sops -d` prints.
struct Fixture {
    dir: tempfile::TempDir,
    key: Key,
    encrypted: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("repo")).expect("mkdir");
        let key = keygen(dir.path(), "main");
        Fixture {
            dir,
            key,
            encrypted: Vec::new(),
        }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn plain(&self) -> PathBuf {
        self.dir.path().join("plain")
    }

    fn sops(&self) -> Command {
        let mut cmd = Command::new(tool("sops"));
        cmd.current_dir(self.dir.path());
        for var in ["SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_RECIPIENTS"] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.dir.path());
        cmd
    }

    fn write(&self, rel: &str, text: &str) -> &Self {
        let path = self.repo().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        self
    }

    /// Writes `text` at `rel` and encrypts it in place with the real sops.
    fn encrypt(&mut self, rel: &str, text: &str) -> &mut Self {
        self.write(rel, text);
        let out = self
            .sops()
            .args(["encrypt", "--in-place", "--age", &self.key.recipient])
            .arg(self.repo().join(rel))
            .output()
            .expect("run sops encrypt");
        assert!(
            out.status.success(),
            "sops encrypt {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = std::fs::read_to_string(self.repo().join(rel)).expect("read");
        assert!(stored.contains("sops"), "sops wrote no metadata into {rel}");
        self.encrypted.push(rel.to_owned());
        self
    }

    /// What the real `sops -d` prints for the stored file `rel`.
    fn sops_d(&self, rel: &str) -> Vec<u8> {
        let out = self
            .sops()
            .env("SOPS_AGE_KEY_FILE", &self.key.file)
            .arg("-d")
            .arg(self.repo().join(rel))
            .output()
            .expect("run sops -d");
        assert!(
            out.status.success(),
            "sops -d {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Copies `repo/` to `plain/`, every encrypted file replaced by `sops -d` output.
    fn decrypted_copy(&self) -> PathBuf {
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.repo())
            .arg(self.plain())
            .status()
            .expect("cp");
        assert!(status.success());
        for rel in &self.encrypted {
            std::fs::write(self.plain().join(rel), self.sops_d(rel)).expect("write plain");
        }
        self.plain()
    }

    fn tree(&self) -> DirTree {
        DirTree::new(self.repo()).expect("tree")
    }

    fn decryption(&self) -> Decryption {
        decryption_from(&self.key.file)
    }
}

fn decryption_from(file: &Path) -> Decryption {
    let text = std::fs::read_to_string(file).expect("key file");
    Decryption::new(Identities::parse(&text).expect("identities"))
}

fn manifest(o: &Object) -> &serde_json::Value {
    match &o.content {
        Content::Manifest(m) => m,
        Content::File { .. } => panic!("{} is a file", o.id),
    }
}

/// The objects of `plain/<path>` rendered without any decryption.
fn plain_objects(plain: &Path, path: &str) -> Vec<Object> {
    let tree = DirTree::new(plain.to_path_buf()).expect("tree");
    render_source(&tree, path, &Limits::default()).expect("the sops -d copy renders")
}

fn render_ok(fx: &Fixture, path: &str) -> Rendered {
    render_source_with(&fx.tree(), path, &Limits::default(), Some(&fx.decryption()))
        .unwrap_or_else(|e| panic!("render failed:\n{e}"))
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
type: Opaque
data:
  password: czNjcjN0LXBhc3N3b3JkLTkxNw==
stringData:
  user: admin-user-x42
  cert: |
    -----BEGIN CERT-----
    multi-line-secret-body-aa
    -----END CERT-----
";

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: production
";

#[test]
fn an_encrypted_secret_renders_decrypted_next_to_a_plain_configmap() {
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    fx.write("app/configmap.yaml", CONFIGMAP);
    let plain = fx.decrypted_copy();

    let rendered = render_ok(&fx, "app");
    let expected = plain_objects(&plain, "app");
    assert_eq!(rendered.objects.len(), 2);
    for (got, want) in rendered.objects.iter().zip(&expected) {
        assert_eq!(got.id, want.id);
        assert_eq!(
            manifest(got),
            manifest(want),
            "{} differs from sops -d",
            got.id
        );
        assert!(
            manifest(got).get("sops").is_none(),
            "sops metadata left in {}",
            got.id
        );
    }
    let secret = rendered
        .objects
        .iter()
        .find(|o| o.id.kind == "Secret")
        .expect("the Secret");
    assert_eq!(
        manifest(secret)["stringData"]["user"],
        serde_json::json!("admin-user-x42")
    );
    assert!(rendered.secrets.is_secret_path("app/secret.yaml"));
    assert!(!rendered.secrets.is_secret_path("app/configmap.yaml"));
    assert_eq!(
        rendered.secrets.paths().collect::<Vec<_>>(),
        ["app/secret.yaml"]
    );

    // Everything printed from the render, redacted, holds none of the values; the object
    // ids (which sops encrypted too) stay readable.
    let yaml = driftless_render::to_yaml(&rendered.objects);
    let json = driftless_render::to_json(&rendered.objects);
    for text in [yaml, json] {
        assert!(text.contains("admin-user-x42"), "render shows values");
        let redacted = rendered.secrets.redact(&text);
        for value in [
            "czNjcjN0LXBhc3N3b3JkLTkxNw==",
            "admin-user-x42",
            "multi-line-secret-body-aa",
            "BEGIN CERT",
        ] {
            assert!(!redacted.contains(value), "{value} left in:\n{redacted}");
        }
        assert!(redacted.contains("<redacted:sops>"));
        assert!(
            redacted.contains("name: db") || redacted.contains("\"name\": \"db\""),
            "{redacted}"
        );
        assert!(
            redacted.contains("production"),
            "plain values stay: {redacted}"
        );
    }
}

#[test]
fn a_multi_document_encrypted_file_renders_every_document() {
    let mut fx = Fixture::new();
    let two = format!(
        "{SECRET}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: api\n  namespace: shop\nstringData:\n  token: tok-5551-abcdef\n"
    );
    fx.encrypt("app/secrets.yaml", &two);
    let plain = fx.decrypted_copy();
    let rendered = render_ok(&fx, "app");
    let expected = plain_objects(&plain, "app");
    assert_eq!(rendered.objects.len(), 2);
    assert_eq!(expected.len(), 2);
    for (got, want) in rendered.objects.iter().zip(&expected) {
        assert_eq!(got.id, want.id);
        assert_eq!(manifest(got), manifest(want));
        assert!(manifest(got).get("sops").is_none());
        assert_eq!(got.origin.file, "app/secrets.yaml");
    }
    assert_eq!(rendered.objects[1].id.name, "api");
    assert!(
        !rendered
            .secrets
            .redact("token=tok-5551-abcdef")
            .contains("tok-5551")
    );
}

#[test]
fn kustomize_generators_read_encrypted_env_and_files_like_kustomize_on_the_decrypted_tree() {
    let mut fx = Fixture::new();
    fx.write(
        "app/kustomization.yaml",
        "resources:\n- secret.yaml\n- configmap.yaml\nnamespace: shop\nsecretGenerator:\n- name: creds\n  envs:\n  - db.env\n  files:\n  - token.txt\n  - config.json\nconfigMapGenerator:\n- name: public\n  literals:\n  - color=blue\n",
    );
    fx.write("app/configmap.yaml", CONFIGMAP);
    fx.encrypt("app/secret.yaml", SECRET);
    fx.encrypt(
        "app/db.env",
        "DB_USER=app-user-77\nDB_PASSWORD=pa55-w0rd-xyz\n",
    );
    fx.encrypt(
        "app/token.txt",
        "bearer-token-0f9e8d7c\nsecond line of token file\n",
    );
    fx.encrypt(
        "app/config.json",
        "{\"apiKey\": \"json-api-key-3141\", \"retries\": 3}\n",
    );
    let plain = fx.decrypted_copy();

    let out = Command::new(tool("kustomize"))
        .arg("build")
        .arg(plain.join("app"))
        .output()
        .expect("run kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let real = String::from_utf8(out.stdout).expect("utf-8");

    let rendered = render_ok(&fx, "app");
    let ours = rendered.kustomize_yaml.clone().expect("a kustomization");
    assert_eq!(
        ours, real,
        "driftless differs from kustomize build on the sops -d copy"
    );
    assert!(
        real.contains("name: creds-"),
        "a hashed generator name: {real}"
    );
    let creds = rendered
        .objects
        .iter()
        .find(|o| o.id.name.starts_with("creds-"))
        .expect("the generated Secret");
    let data = &manifest(creds)["data"];
    let b64 = |s: &str| base64_encode(s.as_bytes());
    assert_eq!(data["DB_PASSWORD"], serde_json::json!(b64("pa55-w0rd-xyz")));
    assert_eq!(
        data["token.txt"],
        serde_json::json!(b64("bearer-token-0f9e8d7c\nsecond line of token file\n"))
    );
    assert!(ours.lines().all(|l| !l.starts_with("sops:")));
    for path in [
        "app/secret.yaml",
        "app/db.env",
        "app/token.txt",
        "app/config.json",
    ] {
        assert!(rendered.secrets.is_secret_path(path), "{path}");
    }
    assert!(!rendered.secrets.is_secret_path("app/kustomization.yaml"));
    let redacted = rendered.secrets.redact(&ours);
    for value in [
        "pa55-w0rd-xyz",
        "app-user-77",
        "bearer-token-0f9e8d7c",
        "json-api-key-3141",
        "admin-user-x42",
    ] {
        assert!(!redacted.contains(value), "{value} in\n{redacted}");
    }
}

/// Standard base64, as a Secret's `data` holds values (written out to keep the test
/// independent of the crate under test).
fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn files_mode_renders_an_encrypted_file_decrypted_and_marks_it_secret() {
    let mut fx = Fixture::new();
    fx.encrypt("host/etc/app.env", "API_TOKEN=host-token-2718\n");
    fx.encrypt("host/etc/key.bin", "raw-binary-secret-1618\n");
    fx.write("host/etc/motd", "welcome\n");
    let rendered = render_files_with(
        &fx.tree(),
        "host",
        &Limits::default(),
        Some(&fx.decryption()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let content = |name: &str| {
        let o = rendered
            .objects
            .iter()
            .find(|o| o.id.name == name)
            .unwrap_or_else(|| panic!("{name} rendered"));
        match &o.content {
            Content::File { data, .. } => data.clone(),
            Content::Manifest(_) => panic!("a file"),
        }
    };
    assert_eq!(content("etc/app.env"), fx.sops_d("host/etc/app.env"));
    assert_eq!(content("etc/key.bin"), fx.sops_d("host/etc/key.bin"));
    assert_eq!(content("etc/key.bin"), b"raw-binary-secret-1618\n");
    assert_eq!(content("etc/motd"), b"welcome\n");
    for name in ["etc/app.env", "host/etc/app.env", "etc/key.bin"] {
        assert!(rendered.secrets.is_secret_path(name), "{name}");
    }
    assert!(!rendered.secrets.is_secret_path("etc/motd"));

    // The diff a files target shows for it holds no plaintext.
    let new = content("etc/app.env");
    let diff = driftless_diff::secret_file_diff(
        Some(b"API_TOKEN=old-token-0000\n"),
        Some(&new),
        "etc/app.env",
    );
    assert!(
        diff.starts_with("SOPS-decrypted file etc/app.env changed (sha256:"),
        "{diff}"
    );
    for value in ["host-token-2718", "old-token-0000", "API_TOKEN"] {
        assert!(!diff.contains(value), "{diff}");
    }
    // The plain entry point refuses the encrypted files instead of copying them as they are.
    let err = render_files(&fx.tree(), "host", &Limits::default()).expect_err("no key");
    let files: Vec<&str> = err.0.iter().map(|e| e.origin.file.as_str()).collect();
    assert_eq!(files, ["host/etc/app.env", "host/etc/key.bin"], "{err}");
}

const NO_KEY: &str =
    "SOPS-encrypted but no age key configured; set decryption.sops.ageKeyFile or SOPS_AGE_KEY_FILE";

#[test]
fn without_a_key_an_encrypted_file_is_an_error_naming_it() {
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    fx.write("app/configmap.yaml", CONFIGMAP);
    let err = render_source_with(&fx.tree(), "app", &Limits::default(), None).expect_err("no key");
    assert_eq!(err.to_string(), format!("app/secret.yaml: {NO_KEY}"));
    assert!(matches!(err.0[0].kind, RenderErrorKind::Decrypt(_)));
    // The entry points without a Decryption refuse it the same way.
    let err = render_source(&fx.tree(), "app", &Limits::default()).expect_err("no key");
    assert_eq!(err.to_string(), format!("app/secret.yaml: {NO_KEY}"));
    let err = driftless_render::render_manifests(&fx.tree(), "app", &Limits::default())
        .expect_err("no key");
    assert_eq!(err.to_string(), format!("app/secret.yaml: {NO_KEY}"));

    // In a kustomization: the generator's input file is named.
    let mut fx = Fixture::new();
    fx.write(
        "k/kustomization.yaml",
        "secretGenerator:\n- name: s\n  envs:\n  - db.env\n",
    );
    fx.encrypt("k/db.env", "PASSWORD=kustomize-secret-99\n");
    let err = render_source_with(&fx.tree(), "k", &Limits::default(), None).expect_err("no key");
    assert!(
        err.to_string().contains(&format!("k/db.env: {NO_KEY}")),
        "{err}"
    );
    let err = driftless_render::render_kustomization(&fx.tree(), "k").expect_err("no key");
    assert!(
        err.to_string().contains(&format!("k/db.env: {NO_KEY}")),
        "{err}"
    );
}

#[test]
fn a_key_for_another_recipient_is_an_error_naming_file_and_recipient() {
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    let other = keygen(fx.dir.path(), "other");
    let err = render_source_with(
        &fx.tree(),
        "app",
        &Limits::default(),
        Some(&decryption_from(&other.file)),
    )
    .expect_err("wrong key");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "app/secret.yaml: none of the configured age identities can decrypt this file"
        ),
        "{text}"
    );
    assert!(text.contains(&fx.key.recipient), "{text}");
    assert!(!text.contains("admin-user-x42"), "{text}");
}

#[test]
fn a_tampered_file_is_an_error() {
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    let path = fx.repo().join("app/secret.yaml");
    let stored = std::fs::read_to_string(&path).expect("read");
    // Swap the encrypted values of two keys: each still decrypts, but not at its path.
    let enc = |key: &str| {
        let line = stored
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}: ENC[")))
            .unwrap_or_else(|| panic!("{key} is encrypted in\n{stored}"));
        line.split_once(": ").expect("pair").1.to_owned()
    };
    let (user, password) = (enc("user"), enc("password"));
    let tampered = stored
        .replace(&user, "@USER@")
        .replace(&password, &user)
        .replace("@USER@", &password);
    assert_ne!(tampered, stored);
    std::fs::write(&path, tampered).expect("write");
    let err = render_source_with(
        &fx.tree(),
        "app",
        &Limits::default(),
        Some(&fx.decryption()),
    )
    .expect_err("tampered");
    let text = err.to_string();
    assert!(text.starts_with("app/secret.yaml: "), "{text}");
    assert!(text.contains("tampered"), "{text}");

    // A changed MAC timestamp: the MAC no longer verifies.
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    let path = fx.repo().join("app/secret.yaml");
    let stored = std::fs::read_to_string(&path).expect("read");
    let line = stored
        .lines()
        .find(|l| l.trim_start().starts_with("lastmodified:"))
        .expect("lastmodified");
    let changed = stored.replace(line, "    lastmodified: \"2001-01-01T00:00:00Z\"");
    std::fs::write(&path, changed).expect("write");
    let err = render_source_with(
        &fx.tree(),
        "app",
        &Limits::default(),
        Some(&fx.decryption()),
    )
    .expect_err("tampered");
    let text = err.to_string();
    assert!(text.starts_with("app/secret.yaml: "), "{text}");
    assert!(
        text.contains("MAC mismatch") || text.contains("tampered"),
        "{text}"
    );
}

#[test]
fn sops_metadata_that_was_not_decrypted_is_never_rendered() {
    let mut fx = Fixture::new();
    fx.encrypt("app/secret.yaml", SECRET);
    // A file whose first document is plain and whose second carries copied metadata is
    // not a SOPS file; the object with the `sops` key must not be rendered.
    let stored = std::fs::read_to_string(fx.repo().join("app/secret.yaml")).expect("read");
    fx.write("app/secret.yaml", &format!("{CONFIGMAP}---\n{stored}"));
    let err = render_source_with(
        &fx.tree(),
        "app",
        &Limits::default(),
        Some(&fx.decryption()),
    )
    .expect_err("sops metadata left");
    let text = err.to_string();
    assert!(text.starts_with("app/secret.yaml:"), "{text}");
    assert!(text.contains("carries a top-level `sops` key"), "{text}");
    assert!(
        err.0
            .iter()
            .any(|e| matches!(e.kind, RenderErrorKind::SopsMetadataLeft(_))),
        "{text}"
    );
}
