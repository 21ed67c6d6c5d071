//! Diff: compares desired and live objects and renders readable unified diffs, with
//! secret values redacted.
//!
//! Pure: no I/O, no clock. It must not decide what to apply; targets and the engine do.
//!
//! - [`unified_diff`] renders two texts as a unified diff (3 lines of context).
//! - [`file_diff`] does the same for file bytes, falling back to a one-line summary for
//!   binary or very large files, and to `/dev/null` for a created or deleted file.
//! - [`redact_manifest`] replaces every value of a Kubernetes Secret by a keyed digest
//!   marker, so a diff shows *that* a value changed but never the value.
//! - [`redact_text`] replaces known secret values (SOPS-decrypted values) anywhere in a
//!   text by `<redacted:sops>`.
//! - [`secret_file_diff`] summarises a change to a SOPS-decrypted file with salted digests
//!   only, never its content.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use similar::TextDiff;

/// Lines of context around each change, as `diff -u` and `git diff` use.
const CONTEXT_LINES: usize = 3;

/// Above this size (either side), file contents are summarised instead of diffed: a line
/// diff of multi-megabyte files is slow and unreadable.
pub const MAX_TEXT_DIFF_BYTES: usize = 2 * 1024 * 1024;

/// The label used for an absent side, as `git diff` does.
const DEV_NULL: &str = "/dev/null";

/// Unified diff (3 lines of context) of `old` → `new` with `--- a/<old_label>` and
/// `+++ b/<new_label>` headers. Returns the empty string when the texts are equal.
/// A last line without a newline is marked `\ No newline at end of file`.
pub fn unified_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    render(
        old,
        new,
        &format!("a/{old_label}"),
        &format!("b/{new_label}"),
    )
}

fn render(old: &str, new: &str, old_header: &str, new_header: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(old_header, new_header)
        .to_string()
}

/// Diff of two versions of the file at `path`; `None` means absent (created when `old`
/// is `None`, deleted when `new` is `None`). Returns the empty string when both sides
/// are equal.
///
/// When both present sides are UTF-8 text without NUL bytes (and under
/// [`MAX_TEXT_DIFF_BYTES`]), the result is a unified diff whose absent side is labelled
/// `/dev/null`. Otherwise it is one line, for example
/// `Binary files a/logo.png and b/logo.png differ (1024 bytes, sha256:0a1b2c3d -> 2048 bytes, sha256:4e5f6a7b)`.
pub fn file_diff(old: Option<&[u8]>, new: Option<&[u8]>, path: &str) -> String {
    if old == new {
        return String::new();
    }
    let old_header = old.map_or_else(|| DEV_NULL.to_owned(), |_| format!("a/{path}"));
    let new_header = new.map_or_else(|| DEV_NULL.to_owned(), |_| format!("b/{path}"));
    let old_text = old.map_or(Some(""), as_text);
    let new_text = new.map_or(Some(""), as_text);
    match (old_text, new_text) {
        (Some(o), Some(n)) => render(o, n, &old_header, &new_header),
        _ => {
            let what = if is_binary(old) || is_binary(new) {
                "Binary files"
            } else {
                "Files"
            };
            format!(
                "{what} {old_header} and {new_header} differ ({} -> {})\n",
                summary(old),
                summary(new)
            )
        }
    }
}

/// The bytes as text when they are UTF-8 without NUL and small enough to diff.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > MAX_TEXT_DIFF_BYTES || bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

fn is_binary(bytes: Option<&[u8]>) -> bool {
    bytes.is_some_and(|b| b.contains(&0) || std::str::from_utf8(b).is_err())
}

/// `N bytes, sha256:XXXXXXXX`, or `absent`.
fn summary(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "absent".to_owned(),
        Some(b) => {
            let digest = Sha256::digest(b);
            format!("{} bytes, sha256:{}", b.len(), hex8(&digest))
        }
    }
}

/// The first 4 bytes as 8 lowercase hex digits.
fn hex8(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The annotation `kubectl apply` (client-side) stores a full copy of the object in,
/// Secret values included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Returns `manifest` with every secret value replaced by a marker.
///
/// For a core-group `Secret` (`apiVersion: v1`, or no apiVersion at all), each value of
/// `data` and `stringData` becomes `<redacted sha256:XXXXXXXX>`, where `XXXXXXXX` is the
/// first 8 hex digits of HMAC-SHA256(`salt`, value). `data` values are decoded from
/// base64 first, so the same secret written as `data` or `stringData` gets the same
/// marker. The `kubectl.kubernetes.io/last-applied-configuration` annotation, which
/// holds a clear copy, is redacted the same way. Items of a `List` are redacted one by
/// one; everything else is returned unchanged.
///
/// Guarantees: equal values give equal markers under one salt, so a diff of two redacted
/// manifests shows which keys changed; the value itself never appears. The salt is meant
/// to be random per process, so markers cannot be reversed with a dictionary prepared
/// for another installation.
pub fn redact_manifest(manifest: &Value, salt: &[u8]) -> Value {
    let mut out = manifest.clone();
    redact_in_place(&mut out, salt);
    out
}

fn redact_in_place(value: &mut Value, salt: &[u8]) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = obj.get_mut("items") {
            for item in items {
                redact_in_place(item, salt);
            }
        }
        return;
    }
    let core = match obj.get("apiVersion") {
        None => true,
        Some(v) => v.as_str() == Some("v1"),
    };
    if kind != "Secret" || !core {
        return;
    }
    if let Some(data) = obj.get_mut("data") {
        redact_values(data, salt, true);
    }
    if let Some(data) = obj.get_mut("stringData") {
        redact_values(data, salt, false);
    }
    if let Some(Value::Object(annotations)) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        && let Some(last) = annotations.get_mut(LAST_APPLIED)
    {
        *last = Value::String(marker(salt, &value_bytes(last, false)));
    }
}

/// Replaces every value of a `data`/`stringData` map. A map of another shape (which the
/// API server would reject) is replaced whole, since it may still hold secret text.
fn redact_values(map: &mut Value, salt: &[u8], base64_values: bool) {
    match map {
        Value::Object(entries) => {
            for v in entries.values_mut() {
                *v = Value::String(marker(salt, &value_bytes(v, base64_values)));
            }
        }
        Value::Null => {}
        other => *other = Value::String(marker(salt, &value_bytes(other, false))),
    }
}

/// The bytes a value stands for: decoded base64 for `data` strings (when they decode),
/// the UTF-8 text for other strings, the JSON text for anything else.
fn value_bytes(v: &Value, base64_values: bool) -> Vec<u8> {
    match v {
        Value::String(s) => {
            if base64_values
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(s)
            {
                return decoded;
            }
            s.as_bytes().to_vec()
        }
        other => other.to_string().into_bytes(),
    }
}

fn marker(salt: &[u8], value: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(salt).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(value);
    format!("<redacted sha256:{}>", hex8(&mac.finalize().into_bytes()))
}

/// The marker [`redact_text`] puts where a secret value was.
pub const SOPS_MARKER: &str = "<redacted:sops>";

/// Values shorter than this (in characters) are not redacted by [`redact_text`]: replacing
/// every `1`, `yes` or `on` in a text would make it unreadable and hide nothing.
pub const MIN_REDACTED_CHARS: usize = 4;

/// Returns `text` with every occurrence of each secret value replaced by
/// [`SOPS_MARKER`]; occurrences that overlap or touch become one marker.
///
/// Rule: a value is redacted when it has at least [`MIN_REDACTED_CHARS`] characters;
/// shorter values are left as they are (Kubernetes Secrets are redacted structurally by
/// [`redact_manifest`] anyway). A value spanning several lines is also redacted line by
/// line (each line, and each line without its surrounding whitespace, of at least
/// [`MIN_REDACTED_CHARS`] characters), so a diff that shows only some of its lines, or
/// re-indents them, still shows none of them.
pub fn redact_text(text: &str, secrets: &[String]) -> String {
    let mut needles: Vec<&str> = Vec::new();
    for secret in secrets {
        needles.push(secret);
        if secret.contains('\n') {
            for line in secret.lines() {
                needles.push(line);
                needles.push(line.trim());
            }
        }
    }
    needles.retain(|s| s.chars().count() >= MIN_REDACTED_CHARS);
    needles.sort_unstable();
    needles.dedup();
    if needles.is_empty() || text.is_empty() {
        return text.to_owned();
    }
    // Mark every byte covered by any occurrence (overlapping ones included), then write
    // each covered run as one marker: no part of a value survives next to a marker.
    let Ok(automaton) = aho_corasick::AhoCorasick::new(&needles) else {
        // Only a pattern set beyond the automaton's size limits gets here: fall back to
        // searching for each value in turn.
        return redact_slowly(text, &needles);
    };
    let mut covered = vec![false; text.len()];
    for m in automaton.find_overlapping_iter(text) {
        covered[m.start()..m.end()].fill(true);
    }
    write_marked(text, &covered)
}

/// [`redact_text`] without the automaton: one search per value.
fn redact_slowly(text: &str, needles: &[&str]) -> String {
    let mut covered = vec![false; text.len()];
    for needle in needles {
        let mut from = 0;
        while let Some(at) = text[from..].find(needle) {
            let start = from + at;
            covered[start..start + needle.len()].fill(true);
            // Step one character, so overlapping occurrences are found too.
            let step = text[start..].chars().next().map_or(1, char::len_utf8);
            from = start + step;
            if from >= text.len() {
                break;
            }
        }
    }
    write_marked(text, &covered)
}

/// `text` with each run of covered bytes replaced by one [`SOPS_MARKER`].
fn write_marked(text: &str, covered: &[bool]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for (i, ch) in text.char_indices() {
        if covered[i] {
            if !in_run {
                out.push_str(SOPS_MARKER);
                in_run = true;
            }
        } else {
            in_run = false;
            out.push(ch);
        }
    }
    out
}

/// A one-line summary of a change to a file whose content is secret (it was decrypted
/// from SOPS), for example
/// `SOPS-decrypted file app/db.env changed (sha256:0a1b2c3d -> sha256:4e5f6a7b)`, or
/// `… created (absent -> sha256:…)` / `… deleted (sha256:… -> absent)`. The empty string
/// when both sides are equal.
///
/// The digests are HMAC-SHA256 under a random salt drawn once per process: equal contents
/// give equal digests within one process (so two plans can be compared), but a digest
/// cannot be checked against guessed contents outside it. Neither content nor size is
/// shown.
pub fn secret_file_diff(old: Option<&[u8]>, new: Option<&[u8]>, path: &str) -> String {
    if old == new {
        return String::new();
    }
    let verb = match (old, new) {
        (None, _) => "created",
        (_, None) => "deleted",
        _ => "changed",
    };
    let digest = |side: Option<&[u8]>| match side {
        None => "absent".to_owned(),
        Some(bytes) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(process_salt())
                .expect("HMAC-SHA256 accepts keys of any length");
            mac.update(bytes);
            format!("sha256:{}", hex8(&mac.finalize().into_bytes()))
        }
    };
    format!(
        "SOPS-decrypted file {path} {verb} ({} -> {})\n",
        digest(old),
        digest(new)
    )
}

/// 32 random bytes, drawn once per process.
fn process_salt() -> &'static [u8] {
    static SALT: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    SALT.get_or_init(|| {
        let mut salt = [0u8; 32];
        if getrandom::fill(&mut salt).is_err() {
            // No OS randomness: fall back to the standard library's per-process random
            // hash keys, which are still unknown outside this process.
            use std::hash::{BuildHasher, Hasher};
            let state = std::collections::hash_map::RandomState::new();
            for (i, chunk) in salt.chunks_mut(8).enumerate() {
                let mut h = state.build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes());
            }
        }
        salt
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SALT: &[u8] = b"per-process salt for tests";

    #[test]
    fn equal_texts_give_an_empty_diff() {
        assert_eq!(unified_diff("a\nb\n", "a\nb\n", "x", "x"), "");
        assert_eq!(file_diff(Some(b"a\n"), Some(b"a\n"), "x"), "");
        assert_eq!(file_diff(None, None, "x"), "");
        assert_eq!(file_diff(Some(&[0, 1]), Some(&[0, 1]), "x"), "");
    }

    #[test]
    fn text_diff_has_headers_hunks_and_three_lines_of_context() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let diff = unified_diff(&old, &new, "conf/app.ini", "conf/app.ini");
        let lines: Vec<&str> = diff.lines().collect();
        assert_eq!(lines[0], "--- a/conf/app.ini");
        assert_eq!(lines[1], "+++ b/conf/app.ini");
        assert_eq!(lines[2], "@@ -7,7 +7,7 @@");
        assert!(lines.contains(&"-line 10"));
        assert!(lines.contains(&"+line ten"));
        assert!(lines.contains(&" line 7"), "3 lines of context before");
        assert!(!lines.contains(&" line 6"), "not 4");
        assert!(lines.contains(&" line 13"), "3 lines of context after");
        assert!(!lines.contains(&" line 14"));
    }

    #[test]
    fn missing_final_newline_is_shown() {
        let diff = unified_diff("a\n", "a", "f", "f");
        assert!(diff.contains("\\ No newline at end of file"), "{diff}");
    }

    #[test]
    fn created_and_deleted_files_diff_against_dev_null() {
        let created = file_diff(None, Some(b"hello\nworld\n"), "etc/motd");
        assert_eq!(
            created,
            "--- /dev/null\n+++ b/etc/motd\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
        );
        let deleted = file_diff(Some(b"bye\n"), None, "etc/motd");
        assert_eq!(
            deleted,
            "--- a/etc/motd\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        );
    }

    #[test]
    fn binary_files_are_summarised_with_sizes_and_digests() {
        let old: &[u8] = &[0x89, b'P', b'N', b'G', 0, 1, 2];
        let new: &[u8] = &[0x89, b'P', b'N', b'G', 0, 1, 2, 3];
        let diff = file_diff(Some(old), Some(new), "img/logo.png");
        let old_sha = hex8(&Sha256::digest(old));
        let new_sha = hex8(&Sha256::digest(new));
        assert_eq!(
            diff,
            format!(
                "Binary files a/img/logo.png and b/img/logo.png differ \
                 (7 bytes, sha256:{old_sha} -> 8 bytes, sha256:{new_sha})\n"
            )
        );
        // Text replaced by binary is still summarised, not half-diffed.
        let diff = file_diff(Some(b"text\n"), Some(new), "f");
        assert!(
            diff.starts_with("Binary files a/f and b/f differ (5 bytes"),
            "{diff}"
        );
        // A new binary file.
        let diff = file_diff(None, Some(new), "f");
        assert!(
            diff.starts_with("Binary files /dev/null and b/f differ (absent -> 8 bytes"),
            "{diff}"
        );
        // Invalid UTF-8 without NUL counts as binary too.
        let diff = file_diff(Some(b"ok\n"), Some(&[0xff, 0xfe]), "f");
        assert!(diff.starts_with("Binary files"), "{diff}");
    }

    #[test]
    fn huge_text_files_are_summarised() {
        let big = "x\n".repeat(MAX_TEXT_DIFF_BYTES / 2 + 1);
        let diff = file_diff(Some(b"x\n"), Some(big.as_bytes()), "big.txt");
        assert!(
            diff.starts_with("Files a/big.txt and b/big.txt differ (2 bytes"),
            "{diff}"
        );
        assert_eq!(diff.lines().count(), 1);
    }

    fn secret(data: Value, string_data: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "web"},
            "type": "Opaque",
            "data": data,
            "stringData": string_data,
        })
    }

    #[test]
    fn secret_data_and_string_data_are_redacted() {
        // "hunter2" in base64 is aHVudGVyMg==
        let live = secret(
            json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="}),
            json!({"token": "s3cr3t-token"}),
        );
        let out = redact_manifest(&live, SALT);
        let text = serde_json::to_string(&out).expect("serialises");
        for clear in [
            "aHVudGVyMg==",
            "hunter2",
            "YWRtaW4=",
            "admin",
            "s3cr3t-token",
        ] {
            assert!(!text.contains(clear), "{clear} leaked: {text}");
        }
        for (map, key) in [
            ("data", "password"),
            ("data", "user"),
            ("stringData", "token"),
        ] {
            let m = out[map][key].as_str().expect("marker is a string");
            assert!(
                m.starts_with("<redacted sha256:") && m.ends_with('>'),
                "{m}"
            );
            assert_eq!(m.len(), "<redacted sha256:>".len() + 8, "{m}");
        }
        // Everything that is not a value is kept.
        assert_eq!(out["metadata"], live["metadata"]);
        assert_eq!(out["type"], "Opaque");
    }

    #[test]
    fn markers_show_changed_and_unchanged_values() {
        let old = secret(json!({"a": "b25l", "b": "dHdv"}), Value::Null);
        let new = secret(json!({"a": "b25l", "b": "VFdP"}), Value::Null);
        let (old, new) = (redact_manifest(&old, SALT), redact_manifest(&new, SALT));
        assert_eq!(
            old["data"]["a"], new["data"]["a"],
            "unchanged value, same marker"
        );
        assert_ne!(
            old["data"]["b"], new["data"]["b"],
            "changed value, new marker"
        );

        // The same value as data (base64) or stringData (clear) gets the same marker.
        let as_string = redact_manifest(&secret(Value::Null, json!({"a": "one"})), SALT);
        assert_eq!(as_string["stringData"]["a"], old["data"]["a"]);

        // The rendered diff of the two says which key changed and nothing more.
        let diff = unified_diff(
            &serde_json::to_string_pretty(&old).expect("json"),
            &serde_json::to_string_pretty(&new).expect("json"),
            "Secret/db",
            "Secret/db",
        );
        assert_eq!(
            diff.lines().filter(|l| l.starts_with('-')).count(),
            2,
            "{diff}"
        );
        assert!(diff.contains("-    \"b\": \"<redacted sha256:"), "{diff}");
        assert!(!diff.contains("dHdv") && !diff.contains("VFdP"), "{diff}");
    }

    #[test]
    fn markers_depend_on_the_salt() {
        let s = secret(json!({"a": "b25l"}), Value::Null);
        let one = redact_manifest(&s, b"salt one");
        let two = redact_manifest(&s, b"salt two");
        assert_ne!(one["data"]["a"], two["data"]["a"]);
        // And the marker is not the plain sha256 of the value.
        let plain = format!("<redacted sha256:{}>", hex8(&Sha256::digest(b"one")));
        assert_ne!(one["data"]["a"], Value::String(plain));
    }

    #[test]
    fn last_applied_annotation_and_odd_shapes_are_redacted() {
        let mut s = secret(json!("bm90LWEtbWFw"), json!({"n": 42}));
        s["metadata"]["annotations"] = json!({
            LAST_APPLIED: "{\"stringData\":{\"pw\":\"topsecret\"}}",
            "team": "payments",
        });
        let out = redact_manifest(&s, SALT);
        let text = out.to_string();
        assert!(!text.contains("topsecret"), "{text}");
        assert!(!text.contains("bm90LWEtbWFw"), "{text}");
        let n = out["stringData"]["n"].as_str().expect("a marker string");
        assert!(n.starts_with("<redacted sha256:"), "{n}");
        assert_eq!(out["metadata"]["annotations"]["team"], "payments");
    }

    #[test]
    fn secrets_inside_a_list_are_redacted() {
        let list = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [secret(json!({"k": "c2VjcmV0"}), Value::Null)],
        });
        let out = redact_manifest(&list, SALT);
        assert!(!out.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn other_kinds_and_groups_are_untouched() {
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"k": "visible"},
        });
        assert_eq!(redact_manifest(&cm, SALT), cm);
        let custom = json!({
            "apiVersion": "example.com/v1",
            "kind": "Secret",
            "data": {"k": "visible"},
        });
        assert_eq!(redact_manifest(&custom, SALT), custom);
        assert_eq!(redact_manifest(&json!("scalar"), SALT), json!("scalar"));
    }

    #[test]
    fn redact_text_removes_every_value_and_each_line_of_multiline_ones() {
        let secrets = vec![
            "hunter22".to_owned(),
            "abc".to_owned(),
            "-----BEGIN KEY-----\n  line-two-secret\nend\n".to_owned(),
        ];
        let text = "pw=hunter22 short=abc\n+    line-two-secret\nx hunter22hunter22 y\n-----BEGIN KEY-----\n";
        let out = redact_text(text, &secrets);
        assert_eq!(
            out,
            "pw=<redacted:sops> short=abc\n+  <redacted:sops>\nx <redacted:sops> y\n<redacted:sops>\n"
        );
        for s in ["hunter22", "line-two-secret", "BEGIN KEY"] {
            assert!(!out.contains(s), "{s} left in {out}");
        }
    }

    #[test]
    fn redact_text_covers_overlapping_occurrences_and_multibyte_text() {
        // "aaaa" occurs overlapping in "aaaaa"; no stray "a" may stay next to the marker.
        let out = redact_text(
            "[aaaaa] ünïcödé-sécret!",
            &["aaaa".to_owned(), "ünïcödé-sécret".to_owned()],
        );
        assert_eq!(out, "[<redacted:sops>] <redacted:sops>!");
        // A secret that is a substring of the marker cannot corrupt another's marker.
        let out = redact_text("pass word", &["pass word".to_owned(), "acted".to_owned()]);
        assert_eq!(out, "<redacted:sops>");
        assert_eq!(redact_text("nothing here", &[]), "nothing here");
        // The fallback search gives the same result as the automaton.
        let needles = ["aaaa", "ünïcödé-sécret"];
        assert_eq!(
            redact_slowly("[aaaaa] ünïcödé-sécret!", &needles),
            "[<redacted:sops>] <redacted:sops>!"
        );
    }

    #[test]
    fn secret_file_diff_shows_digests_only() {
        let old = b"PASSWORD=old-secret-value\n".as_slice();
        let new = b"PASSWORD=new-secret-value\n".as_slice();
        let d = secret_file_diff(Some(old), Some(new), "app/db.env");
        assert!(
            d.starts_with("SOPS-decrypted file app/db.env changed (sha256:"),
            "{d}"
        );
        for s in ["secret", "PASSWORD", "old", "new-"] {
            assert!(!d.contains(s), "{s} in {d}");
        }
        // Salted: not the plain sha256 of the content.
        assert!(!d.contains(&hex8(&Sha256::digest(old))), "{d}");
        // Stable within the process: the same change gives the same line.
        assert_eq!(d, secret_file_diff(Some(old), Some(new), "app/db.env"));
        let created = secret_file_diff(None, Some(new), "app/db.env");
        assert!(created.contains(" created (absent -> sha256:"), "{created}");
        assert!(
            created
                .trim_end()
                .ends_with(&d.trim_end()[d.trim_end().len() - 16..]),
            "{created} vs {d}"
        );
        let deleted = secret_file_diff(Some(old), None, "app/db.env");
        assert!(
            deleted.contains(" deleted (sha256:") && deleted.contains("-> absent)"),
            "{deleted}"
        );
        assert_eq!(secret_file_diff(Some(old), Some(old), "x"), "");
    }
}
