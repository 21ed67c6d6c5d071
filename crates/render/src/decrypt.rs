//! SOPS decryption while rendering: a [`Tree`] adapter that hands out the plaintext of
//! every SOPS-encrypted file it reads, and remembers what it decrypted so that callers can
//! redact it.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use driftless_model::{EntryKind, Tree, TreeEntry, TreeError};
use driftless_sops::{Format, Identities};

use crate::Limits;
use zeroize::Zeroize;

/// The keys to decrypt SOPS-encrypted files with while rendering.
///
/// Built by the caller from the app's `decryption.sops.ageKeyFile` and the environment
/// (see [`Identities::from_env_and_file`]); this crate never reads keys itself.
#[derive(Debug)]
pub struct Decryption {
    identities: Identities,
}

impl Decryption {
    /// Decrypts with these identities.
    pub fn new(identities: Identities) -> Self {
        Self { identities }
    }

    /// The identities in use.
    pub fn identities(&self) -> &Identities {
        &self.identities
    }
}

/// What a render decrypted: every secret value and the paths of the decrypted files.
///
/// Use [`SecretSet::redact`] on any text shown to a user that may hold rendered content
/// (plan diffs, logs, error messages), and [`SecretSet::is_secret_path`] to decide that a
/// file's diff must be a digest summary only.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct SecretSet {
    /// Decrypted leaf values, plus the base64 form of each (as a Secret's `data` holds it).
    values: BTreeSet<String>,
    /// Tree paths of the files that were decrypted.
    paths: BTreeSet<String>,
    /// Files mode: the names (paths relative to the rendered folder) of the files rendered
    /// from a decrypted file.
    file_names: BTreeSet<String>,
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSet")
            .field("values", &format_args!("<{} redacted>", self.values.len()))
            .field("paths", &self.paths)
            .field("file_names", &self.file_names)
            .finish()
    }
}

impl Drop for SecretSet {
    fn drop(&mut self) {
        for mut value in std::mem::take(&mut self.values) {
            value.zeroize();
        }
    }
}

impl SecretSet {
    /// Whether nothing was decrypted.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Replaces every occurrence of each decrypted value in `text` by `<redacted:sops>`
    /// (see [`driftless_diff::redact_text`]): values of at least 4 characters, and each
    /// line of a multi-line value. Shorter values (`1`, `yes`, `on`) are left as they are;
    /// Kubernetes Secrets are redacted structurally by [`driftless_diff::redact_manifest`]
    /// anyway. A value is also redacted in its base64 form. Values that are also an
    /// object's `apiVersion`, `kind`, name or namespace are not redacted: sops encrypts
    /// those too unless told otherwise, but they are shown as the object's id everywhere.
    pub fn redact(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_owned();
        }
        self.with_values(|values| driftless_diff::redact_text(text, values))
    }

    /// Whether `path` is a file that was decrypted: a tree path read by the render, or, in
    /// files mode, the name of a rendered file (its path relative to the rendered folder,
    /// which is the [`driftless_model::ObjectRef`] name) whose content was decrypted.
    pub fn is_secret_path(&self, path: &str) -> bool {
        self.paths.contains(path) || self.file_names.contains(path)
    }

    /// The decrypted files' tree paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }

    /// How many distinct values (and their base64 forms) are held for redaction.
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn add_file_name(&mut self, name: &str) {
        self.file_names.insert(name.to_owned());
    }

    /// Stops redacting values that are shown as object ids anyway.
    pub(crate) fn forget_values(&mut self, shown: &BTreeSet<&str>) {
        for mut value in std::mem::take(&mut self.values) {
            if shown.contains(value.as_str()) {
                value.zeroize();
            } else {
                self.values.insert(value);
            }
        }
    }

    /// Redacts with a copy of the values that is wiped afterwards.
    fn with_values<T>(&self, f: impl FnOnce(&[String]) -> T) -> T {
        let mut values: Vec<String> = self.values.iter().cloned().collect();
        let out = f(&values);
        values.zeroize();
        out
    }
}

/// Why a SOPS file could not be read; its message names no value and no key, and not the
/// file's path either (the tree error around it adds that).
#[derive(Debug)]
pub(crate) struct DecryptError {
    /// 1-based line in the file, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl DecryptError {
    /// Splits a sops error message (`file[:line[:col]]: reason`) into its parts.
    fn from_sops(path: &str, message: &str) -> Self {
        let plain = |message: &str| Self {
            line: 0,
            col: 0,
            message: message.to_owned(),
        };
        let Some(rest) = message.strip_prefix(path) else {
            return plain(message);
        };
        if let Some(reason) = rest.strip_prefix(": ") {
            return plain(reason);
        }
        let Some((location, reason)) = rest.strip_prefix(':').and_then(|r| r.split_once(": "))
        else {
            return plain(message);
        };
        let mut parts = location.split(':').map(str::parse::<usize>);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(line)), col, None) => Self {
                line,
                col: match col {
                    Some(Ok(c)) => c,
                    _ => 0,
                },
                message: reason.to_owned(),
            },
            _ => plain(message),
        }
    }
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.col) {
            (0, _) => f.write_str(&self.message),
            (l, 0) => write!(f, "line {l}: {}", self.message),
            (l, c) => write!(f, "line {l}, column {c}: {}", self.message),
        }
    }
}

impl std::error::Error for DecryptError {}

/// A [`Tree`] whose `read` returns the plaintext of SOPS-encrypted files.
///
/// A file is SOPS-encrypted when it carries SOPS metadata in the format its extension
/// names (`.yaml`/`.yml`, `.json`, `.env`; anything else is tried as sops' binary, JSON,
/// YAML and dotenv forms). Other files are returned unchanged. Without identities an
/// encrypted file is an error, never returned as it is. Listings and kinds pass through;
/// sizes stay the stored (encrypted) sizes, which are larger than the plaintext.
///
/// Every read of a render passes here, so this is also where the render's limits on
/// what is read are kept: no file over [`Limits::max_file_bytes`] is handed out (or
/// parsed for SOPS metadata), nor more than [`Limits::max_total_bytes`] in total.
pub struct DecryptingTree<'a> {
    inner: &'a dyn Tree,
    identities: Option<&'a Identities>,
    seen: Mutex<SecretSet>,
    limits: Limits,
    /// Bytes handed out so far.
    read: AtomicU64,
}

/// The render went past [`Limits::max_total_bytes`] (the limit).
#[derive(Debug)]
pub(crate) struct TotalBytes(pub u64);

impl std::fmt::Display for TotalBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the render reads more than {} bytes in total (limit max_total_bytes)",
            self.0
        )
    }
}

impl std::error::Error for TotalBytes {}

impl<'a> DecryptingTree<'a> {
    /// Wraps `inner` with the default [`Limits`]; `decryption` is `None` when no key is
    /// configured.
    pub fn new(inner: &'a dyn Tree, decryption: Option<&'a Decryption>) -> Self {
        Self::with_limits(inner, decryption, &Limits::default())
    }

    /// Wraps `inner`, holding every read to `limits`.
    pub fn with_limits(
        inner: &'a dyn Tree,
        decryption: Option<&'a Decryption>,
        limits: &Limits,
    ) -> Self {
        Self {
            inner,
            identities: decryption.map(|d| &d.identities),
            seen: Mutex::new(SecretSet::default()),
            limits: *limits,
            read: AtomicU64::new(0),
        }
    }

    /// The limits every read is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What was decrypted so far.
    pub fn secrets(&self) -> SecretSet {
        self.lock().clone()
    }

    /// Whether the file at tree path `path` was decrypted.
    pub(crate) fn was_decrypted(&self, path: &str) -> bool {
        self.lock().paths.contains(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SecretSet> {
        // A panic while holding the lock leaves the set merely incomplete-but-valid.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cheap test before parsing: every SOPS format spells `sops` in its metadata.
fn may_be_encrypted(data: &[u8]) -> bool {
    data.windows(4).any(|w| w == b"sops")
}

/// The format this file is SOPS-encrypted in, if it is: only a top-level `sops` mapping
/// with `mac` and `lastmodified` (or dotenv's `sops_mac=`/`sops_lastmodified=` lines)
/// counts. A document the SOPS readers refuse within `limits` (too deep, say) is not
/// encrypted: it is then read as plain text, and its own parser reports the problem.
pub(crate) fn sops_format(path: &str, data: &[u8], limits: &Limits) -> Option<Format> {
    if !may_be_encrypted(data) {
        return None;
    }
    let by_name = Format::from_path(path);
    if driftless_sops::is_encrypted_with(data, by_name, limits) {
        return Some(by_name);
    }
    if by_name == Format::Binary {
        // sops picks binary for unknown extensions, but `--input-type` may have said
        // otherwise when the file was encrypted.
        return [Format::Json, Format::Yaml, Format::Dotenv]
            .into_iter()
            .find(|f| driftless_sops::is_encrypted_with(data, *f, limits));
    }
    None
}

fn backend(path: &str, error: DecryptError) -> TreeError {
    TreeError::Backend {
        path: path.to_owned(),
        source: Box::new(error),
    }
}

impl Tree for DecryptingTree<'_> {
    fn list(&self, dir: &str) -> Result<Vec<TreeEntry>, TreeError> {
        self.inner.list(dir)
    }

    fn kind(&self, path: &str) -> Result<Option<EntryKind>, TreeError> {
        self.inner.kind(path)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, TreeError> {
        let data = self.inner.read(path)?;
        let size = data.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(TreeError::TooLarge {
                path: path.to_owned(),
                size,
                limit: self.limits.max_file_bytes,
            });
        }
        let total = self
            .read
            .fetch_add(size, Ordering::Relaxed)
            .saturating_add(size);
        if total > self.limits.max_total_bytes {
            return Err(TreeError::Backend {
                path: path.to_owned(),
                source: Box::new(TotalBytes(self.limits.max_total_bytes)),
            });
        }
        let Some(format) = sops_format(path, &data, &self.limits) else {
            return Ok(data);
        };
        let Some(ids) = self.identities else {
            return Err(backend(
                path,
                DecryptError {
                    line: 0,
                    col: 0,
                    message: "SOPS-encrypted but no age key configured; set decryption.sops.ageKeyFile or SOPS_AGE_KEY_FILE".to_owned(),
                },
            ));
        };
        match driftless_sops::decrypt_with(&data, format, ids, path, &self.limits) {
            Ok(decrypted) => {
                let mut seen = self.lock();
                seen.paths.insert(path.to_owned());
                for value in &decrypted.secret_values {
                    if !seen.values.contains(value) {
                        seen.values.insert(value.clone());
                    }
                    if value.chars().count() >= driftless_diff::MIN_REDACTED_CHARS {
                        let mut encoded = base64::engine::general_purpose::STANDARD.encode(value);
                        if !seen.values.contains(&encoded) {
                            seen.values.insert(encoded);
                        } else {
                            encoded.zeroize();
                        }
                    }
                }
                Ok(decrypted.plaintext.clone())
            }
            Err(err) => Err(backend(
                path,
                DecryptError::from_sops(path, &err.to_string()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sops_messages_lose_the_file_name_and_keep_the_place() {
        let e = DecryptError::from_sops("a/s.yaml", "a/s.yaml:3:7: bad thing; fix it");
        assert_eq!(
            (e.line, e.col, e.message.as_str()),
            (3, 7, "bad thing; fix it")
        );
        assert_eq!(e.to_string(), "line 3, column 7: bad thing; fix it");
        let e = DecryptError::from_sops("a/s.yaml", "a/s.yaml:4: bad");
        assert_eq!(
            (e.line, e.col, e.to_string().as_str()),
            (4, 0, "line 4: bad")
        );
        let e = DecryptError::from_sops("a/s.yaml", "a/s.yaml: MAC mismatch");
        assert_eq!(e.to_string(), "MAC mismatch");
        let e = DecryptError::from_sops("a/s.yaml", "no age identity configured");
        assert_eq!(e.to_string(), "no age identity configured");
    }

    #[test]
    fn only_files_with_sops_metadata_count_as_encrypted() {
        assert_eq!(
            sops_format("a.yaml", b"kind: sops\n", &Limits::default()),
            None
        );
        assert_eq!(
            sops_format("a.txt", b"plain text", &Limits::default()),
            None
        );
        let yaml = b"a: ENC[x]\nsops:\n  mac: m\n  lastmodified: t\n";
        assert_eq!(
            sops_format("a.yaml", yaml, &Limits::default()),
            Some(Format::Yaml)
        );
        // An unknown extension encrypted with --input-type yaml is still found.
        assert_eq!(
            sops_format("a.conf", yaml, &Limits::default()),
            Some(Format::Yaml)
        );
        let env = b"A=ENC[x]\nsops_mac=m\nsops_lastmodified=t\n";
        assert_eq!(
            sops_format("a.env", env, &Limits::default()),
            Some(Format::Dotenv)
        );
    }
}
