//! The one error type of this crate. Messages name the file and what to do; they never carry
//! a decrypted value or a secret key.

/// Why a SOPS document could not be decrypted, or identities could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// No age identity was configured anywhere.
    #[error(
        "no age identity configured: set decryption.sops.ageKeyFile for the app, or SOPS_AGE_KEY_FILE / SOPS_AGE_KEY in the environment"
    )]
    NoKeys,
    /// An identity source could not be read.
    #[error(
        "cannot read age identities from {source_label}: {reason}; check that the file exists and is readable"
    )]
    KeySource {
        /// Where the identities were to come from (a path or an environment variable name).
        source_label: String,
        /// The I/O failure, without file contents.
        reason: String,
    },
    /// A line of an identity file is not an age X25519 secret key.
    #[error(
        "{source_label}: line {line} is not an age identity (expected AGE-SECRET-KEY-1…, as age-keygen writes); fix or remove that line"
    )]
    InvalidIdentity {
        /// Where the identities came from.
        source_label: String,
        /// 1-based line number.
        line: usize,
    },
    /// An identity was readable but cannot be used here (a passphrase-protected or an
    /// unsupported SSH key).
    #[error("{source_label}: {reason}")]
    UnsupportedIdentity {
        /// Where the identity came from.
        source_label: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// None of our identities opens any of the file's age stanzas.
    #[error(
        "{file}: none of the configured age identities can decrypt this file; it is encrypted for {}; add the matching AGE-SECRET-KEY to the key file, or re-encrypt the file for one of your recipients (sops updatekeys)",
        list_or_none(recipients)
    )]
    NoMatchingKey {
        /// The file being decrypted.
        file: String,
        /// The age recipients the file is encrypted for.
        recipients: Vec<String>,
    },
    /// The file has no age recipients at all, only key types driftless cannot use.
    #[error(
        "{file}: encrypted only for {} keys, which driftless does not support; add an age recipient to the file (sops updatekeys with an age key in .sops.yaml)",
        kinds.join(", ")
    )]
    UnsupportedKeyType {
        /// The file being decrypted.
        file: String,
        /// The key kinds found (pgp, kms, gcp_kms, azure_kv, hc_vault, shamir key groups…).
        kinds: Vec<String>,
    },
    /// The recomputed MAC differs from the stored one: the file was changed after encryption.
    #[error(
        "{file}: MAC mismatch, the file was modified after it was encrypted; restore it from a trusted revision or re-encrypt it with sops"
    )]
    MacMismatch {
        /// The file being decrypted.
        file: String,
    },
    /// A value failed authentication with the data key.
    #[error(
        "{file}: the encrypted value at '{path}' does not authenticate, the file was tampered with or corrupted; restore it from a trusted revision or re-encrypt it with sops"
    )]
    Tampered {
        /// The file being decrypted.
        file: String,
        /// The key path of the value, joined with ':'.
        path: String,
    },
    /// The document could not be parsed, or its SOPS metadata is incomplete.
    #[error("{file}{}: {reason}; fix the file or re-encrypt it with sops", location(*line, *col))]
    Malformed {
        /// The file being decrypted.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        col: usize,
        /// What is wrong (never a value).
        reason: String,
    },
    /// The document is past one of the limits that keep hostile input from exhausting
    /// stack, memory or time (nesting depth, file size, number of age recipients).
    #[error("{file}{}: {reason}", location(*line, *col))]
    Limit {
        /// The file being decrypted.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        col: usize,
        /// Which limit, with its value, e.g. `nesting deeper than 100 levels`.
        reason: String,
    },
    /// The document carries no SOPS metadata.
    #[error(
        "{file}: not a SOPS-encrypted file (no sops metadata with mac and lastmodified); encrypt it with sops or do not mark it for decryption"
    )]
    NotEncrypted {
        /// The file being decrypted.
        file: String,
    },
}

/// `:line:col`, or nothing when the place is not known (errors found while walking the tree
/// name the key path in their reason instead).
fn location(line: usize, col: usize) -> String {
    match (line, col) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}

fn list_or_none(recipients: &[String]) -> String {
    if recipients.is_empty() {
        "no age recipient".to_string()
    } else {
        recipients.join(", ")
    }
}

impl SopsError {
    pub(crate) fn limit(file: &str, line: usize, col: usize, reason: impl Into<String>) -> Self {
        SopsError::Limit {
            file: file.to_string(),
            line,
            col,
            reason: reason.into(),
        }
    }

    pub(crate) fn too_deep(file: &str, line: usize, col: usize, max: usize) -> Self {
        Self::limit(file, line, col, format!("nesting deeper than {max} levels"))
    }

    pub(crate) fn malformed(
        file: &str,
        line: usize,
        col: usize,
        reason: impl Into<String>,
    ) -> Self {
        SopsError::Malformed {
            file: file.to_string(),
            line,
            col,
            reason: reason.into(),
        }
    }
}
