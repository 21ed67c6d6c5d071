//! SOPS: decrypts SOPS-encrypted YAML, JSON, dotenv and binary documents with age
//! identities, verifying the MAC.
//!
//! Pure: bytes and keys in, plaintext out. It must not log, print or keep a decrypted value.
//! Its errors name the file and the remedy and never carry a value or a key.
//!
//! # Flow
//! 1. Parse the document into the tree sops works on (comments included) and read the `sops`
//!    metadata.
//! 2. Unwrap the 32-byte data key from one of the `age` stanzas with our identities (age
//!    X25519 keys, or unencrypted ssh-ed25519 / ssh-rsa keys as sops allows).
//! 3. Walk the tree: decide per leaf, with `unencrypted_suffix` and friends, whether it is
//!    encrypted; decrypt it (AES-256-GCM, the key path joined with ':' plus ':' as additional
//!    data); feed its plaintext form into SHA-512.
//! 4. Decrypt the stored MAC (with `lastmodified` as additional data) and compare: fail closed.
//! 5. Print the tree as `sops -d` would (go-yaml v3 rules for YAML, Go JSON rules for JSON).
//!
//! # Guarantees
//! Bounded: [`decrypt_with`] and [`is_encrypted_with`] refuse files over
//! [`Limits::max_file_bytes`] and nesting past [`Limits::max_depth`] (the readers, the
//! decrypting walk and the printers recurse once per level), and more than 1,000 age
//! recipients; reading the metadata is linear in its size.
//!
//! # Caveats
//! Key groups with Shamir thresholds, PGP and cloud KMS keys are refused with
//! [`SopsError::UnsupportedKeyType`]. YAML anchors, aliases and tags are refused as malformed.

mod dotenv;
mod error;
mod gofmt;
mod json;
mod tree;
mod yaml;

use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroize;

pub use driftless_model::Limits;
pub use error::SopsError;
use tree::{Entry, Metadata, Rules, Value, Walker};

/// A set of age identities: X25519 secret keys, and SSH keys (ssh-ed25519, ssh-rsa) as age
/// and sops accept them.
pub struct Identities {
    keys: Vec<age::x25519::Identity>,
    ssh: Vec<age::ssh::Identity>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("x25519", &self.keys.len())
            .field("ssh", &self.ssh.len())
            .finish_non_exhaustive()
    }
}

/// Where identities come from; every source that is set is used.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeySources<'a> {
    /// The app's `decryption.sops.ageKeyFile`.
    pub key_file: Option<&'a Path>,
    /// `SOPS_AGE_KEY_FILE`.
    pub env_key_file: Option<&'a Path>,
    /// `SOPS_AGE_KEY`: identity lines inline.
    pub env_key: Option<&'a str>,
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`: an unencrypted OpenSSH private key.
    pub env_ssh_key_file: Option<&'a Path>,
}

fn read_source(path: &Path, label: &str) -> Result<(String, String), SopsError> {
    let label = format!("{} ({label})", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| SopsError::KeySource {
        source_label: label.clone(),
        reason: e.kind().to_string(),
    })?;
    Ok((text, label))
}

impl Identities {
    /// Parses `AGE-SECRET-KEY-1…` lines; blank lines and `#` comments are allowed (the
    /// format `age-keygen` writes).
    pub fn parse(text: &str) -> Result<Self, SopsError> {
        Self::parse_labeled(text, "the age identity text")
    }

    fn parse_labeled(text: &str, label: &str) -> Result<Self, SopsError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id =
                age::x25519::Identity::from_str(line).map_err(|_| SopsError::InvalidIdentity {
                    source_label: label.to_string(),
                    line: i + 1,
                })?;
            keys.push(id);
        }
        Ok(Identities {
            keys,
            ssh: Vec::new(),
        })
    }

    /// Parses an unencrypted OpenSSH private key (ssh-ed25519 or ssh-rsa), which sops accepts
    /// for files encrypted to the matching `ssh-…` age recipient.
    pub fn parse_ssh(text: &str, label: &str) -> Result<Self, SopsError> {
        let invalid = || {
            SopsError::UnsupportedIdentity {
            source_label: label.to_string(),
            reason: "not an OpenSSH private key; point SOPS_AGE_SSH_PRIVATE_KEY_FILE at an ssh-ed25519 or ssh-rsa private key".to_string(),
        }
        };
        let id = age::ssh::Identity::from_buffer(text.as_bytes(), None).map_err(|_| invalid())?;
        match id {
            age::ssh::Identity::Unencrypted(_) => Ok(Identities { keys: Vec::new(), ssh: vec![id] }),
            age::ssh::Identity::Encrypted(_) => Err(SopsError::UnsupportedIdentity {
                source_label: label.to_string(),
                reason: "the SSH key is protected by a passphrase, which driftless cannot ask for; use an age key (age-keygen) or an unencrypted SSH key".to_string(),
            }),
            age::ssh::Identity::Unsupported(_) => Err(SopsError::UnsupportedIdentity {
                source_label: label.to_string(),
                reason: "this SSH key type is not supported by age; use ssh-ed25519 or ssh-rsa, or an age key".to_string(),
            }),
        }
    }

    /// Loads identities from `key_file` when given, then `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`
    /// and `SOPS_AGE_SSH_PRIVATE_KEY_FILE` (all that are set are combined). Fails with
    /// [`SopsError::NoKeys`] when none is set or none holds a key.
    pub fn from_env_and_file(key_file: Option<&Path>) -> Result<Self, SopsError> {
        let var_path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
        };
        let env_key_file = var_path("SOPS_AGE_KEY_FILE");
        let env_ssh_key_file = var_path("SOPS_AGE_SSH_PRIVATE_KEY_FILE");
        let env_key = std::env::var("SOPS_AGE_KEY").ok().filter(|v| !v.is_empty());
        Self::from_sources(KeySources {
            key_file,
            env_key_file: env_key_file.as_deref(),
            env_key: env_key.as_deref(),
            env_ssh_key_file: env_ssh_key_file.as_deref(),
        })
    }

    /// The same as [`Identities::from_env_and_file`] with the sources passed in.
    pub fn from_sources(sources: KeySources<'_>) -> Result<Self, SopsError> {
        let mut all = Identities {
            keys: Vec::new(),
            ssh: Vec::new(),
        };
        for (path, label) in [
            (sources.key_file, "decryption.sops.ageKeyFile"),
            (sources.env_key_file, "SOPS_AGE_KEY_FILE"),
        ] {
            if let Some(path) = path {
                let (mut text, label) = read_source(path, label)?;
                let parsed = Self::parse_labeled(&text, &label);
                text.zeroize();
                all.keys.extend(parsed?.keys);
            }
        }
        if let Some(text) = sources.env_key {
            all.keys
                .extend(Self::parse_labeled(text, "SOPS_AGE_KEY")?.keys);
        }
        if let Some(path) = sources.env_ssh_key_file {
            let (mut text, label) = read_source(path, "SOPS_AGE_SSH_PRIVATE_KEY_FILE")?;
            let parsed = Self::parse_ssh(&text, &label);
            text.zeroize();
            all.ssh.extend(parsed?.ssh);
        }
        if all.is_empty() {
            return Err(SopsError::NoKeys);
        }
        Ok(all)
    }

    /// How many identities the set holds.
    pub fn len(&self) -> usize {
        self.keys.len() + self.ssh.len()
    }

    /// Whether the set holds no identity.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ssh.is_empty()
    }

    /// The public recipients (`age1…`) of the X25519 identities.
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }
}

/// The document formats sops knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly several documents.
    Yaml,
    /// A JSON object.
    Json,
    /// `KEY=value` lines.
    Dotenv,
    /// Any bytes, stored as a JSON document with a `data` key.
    Binary,
}

impl Format {
    /// The format sops picks from a file name's extension.
    pub fn from_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Format::Yaml
        } else if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".env") {
            Format::Dotenv
        } else {
            Format::Binary
        }
    }
}

/// Whether these bytes carry SOPS metadata: a top-level `sops` key with `mac` and
/// `lastmodified` for YAML and JSON (and binary, which is JSON with `data`), `sops_mac=` and
/// `sops_lastmodified=` lines for dotenv. With the default [`Limits`]; see
/// [`is_encrypted_with`].
pub fn is_encrypted(data: &[u8], format: Format) -> bool {
    is_encrypted_with(data, format, &Limits::default())
}

/// [`is_encrypted`] within `limits`: a document nested deeper than
/// [`Limits::max_depth`] is not read, so it does not count as encrypted (the caller then
/// reads it as plain text and reports the depth with its own parser).
pub fn is_encrypted_with(data: &[u8], format: Format, limits: &Limits) -> bool {
    let has = |v: &Value| v.get("mac").is_some() && v.get("lastmodified").is_some();
    let depth = limits.max_depth;
    match format {
        Format::Dotenv => dotenv::has_metadata(data),
        Format::Yaml => yaml::parse(data, "", depth).is_ok_and(|docs| {
            docs.first().is_some_and(|doc| {
                doc.iter()
                    .any(|e| matches!(e, Entry::Pair(k, v) if k == "sops" && has(v)))
            })
        }),
        Format::Json => json::parse(data, "", depth).is_ok_and(|v| v.get("sops").is_some_and(has)),
        Format::Binary => json::parse(data, "", depth)
            .is_ok_and(|v| v.get("data").is_some() && v.get("sops").is_some_and(has)),
    }
}

/// A decrypted document. Its memory is wiped on drop.
pub struct Decrypted {
    /// Exactly the bytes `sops -d` prints for the file.
    pub plaintext: Vec<u8>,
    /// Every decrypted leaf value (non-empty), so callers can redact them.
    pub secret_values: Vec<String>,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes redacted>", self.plaintext.len()),
            )
            .field(
                "secret_values",
                &format_args!("<{} redacted>", self.secret_values.len()),
            )
            .finish()
    }
}

impl Drop for Decrypted {
    fn drop(&mut self) {
        self.plaintext.zeroize();
        self.secret_values.zeroize();
    }
}

/// Decrypts a SOPS document to exactly the bytes `sops -d` prints for it, within the
/// default [`Limits`] (see [`decrypt_with`]). `file_label` names the file in errors.
pub fn decrypt(
    data: &[u8],
    format: Format,
    ids: &Identities,
    file_label: &str,
) -> Result<Decrypted, SopsError> {
    decrypt_with(data, format, ids, file_label, &Limits::default())
}

/// [`decrypt`] within `limits`: a file larger than [`Limits::max_file_bytes`] or nested
/// deeper than [`Limits::max_depth`] fails with [`SopsError::Limit`] before it is read
/// further. Every walk over the document recurses at most that deep.
pub fn decrypt_with(
    data: &[u8],
    format: Format,
    ids: &Identities,
    file_label: &str,
    limits: &Limits,
) -> Result<Decrypted, SopsError> {
    let file = file_label;
    if data.len() as u64 > limits.max_file_bytes {
        return Err(SopsError::limit(
            file,
            0,
            0,
            format!(
                "file is {} bytes, over the limit of {} bytes",
                data.len(),
                limits.max_file_bytes
            ),
        ));
    }
    let depth = limits.max_depth;
    match format {
        Format::Yaml => {
            let mut docs = tree::Docs(yaml::parse(data, file, depth)?);
            let md_value = docs
                .first()
                .and_then(|doc| {
                    doc.iter().find_map(|e| match e {
                        Entry::Pair(k, v) if k == "sops" => Some(v.clone()),
                        _ => None,
                    })
                })
                .ok_or_else(|| SopsError::NotEncrypted {
                    file: file.to_string(),
                })?;
            let md = Metadata::from_value(&md_value, file)?;
            for doc in docs.iter_mut() {
                doc.retain(|e| !matches!(e, Entry::Pair(k, _) if k == "sops"));
            }
            let secrets = decrypt_branches(&mut docs, &md, ids, file)?;
            Ok(Decrypted {
                plaintext: yaml::emit(&docs).into_bytes(),
                secret_values: secrets,
            })
        }
        Format::Json | Format::Binary => {
            let root = json::parse(data, file, depth)?;
            let Value::Map(mut entries) = root else {
                return Err(SopsError::malformed(
                    file,
                    1,
                    1,
                    "the top level must be an object",
                ));
            };
            let md_value = entries
                .iter()
                .find_map(|e| match e {
                    Entry::Pair(k, v) if k == "sops" => Some(v.clone()),
                    _ => None,
                })
                .ok_or_else(|| SopsError::NotEncrypted {
                    file: file.to_string(),
                })?;
            let md = Metadata::from_value(&md_value, file)?;
            entries.retain(|e| !matches!(e, Entry::Pair(k, _) if k == "sops"));
            let mut docs = tree::Docs(vec![entries]);
            let secrets = decrypt_branches(&mut docs, &md, ids, file)?;
            let entries = &docs[0];
            let plaintext = if format == Format::Binary {
                match entries.iter().find_map(|e| match e {
                    Entry::Pair(k, v) if k == "data" => Some(v),
                    _ => None,
                }) {
                    Some(Value::Str(s)) => s.clone().into_bytes(),
                    Some(Value::Bytes(b)) => b.clone(),
                    Some(_) => {
                        return Err(SopsError::malformed(
                            file,
                            0,
                            0,
                            "the 'data' key of a binary file is not a string",
                        ));
                    }
                    None => {
                        return Err(SopsError::malformed(
                            file,
                            0,
                            0,
                            "a binary sops file needs a 'data' key",
                        ));
                    }
                }
            } else {
                json::emit_map(entries).into_bytes()
            };
            Ok(Decrypted {
                plaintext,
                secret_values: secrets,
            })
        }
        Format::Dotenv => {
            let (entries, meta) = dotenv::parse(data, file)?;
            if meta.is_empty() {
                return Err(SopsError::NotEncrypted {
                    file: file.to_string(),
                });
            }
            let md = dotenv::metadata(&meta, file)?;
            let mut docs = tree::Docs(vec![entries]);
            let secrets = decrypt_branches(&mut docs, &md, ids, file)?;
            Ok(Decrypted {
                plaintext: dotenv::emit(&docs[0]).into_bytes(),
                secret_values: secrets,
            })
        }
    }
}

fn decrypt_branches(
    docs: &mut [Vec<Entry>],
    md: &Metadata,
    ids: &Identities,
    file: &str,
) -> Result<Vec<String>, SopsError> {
    let rules = Rules::new(md, file)?;
    let mut key = data_key(md, ids, file)?;
    let result = (|| {
        let mut walker = Walker::new(&rules, &key, file);
        for doc in docs.iter_mut() {
            walker.walk_branch(doc)?;
        }
        let (mut mac, secrets) = walker.mac();
        let verified = tree::verify_mac(md, &key, &mac, file);
        mac.zeroize();
        verified.map(|()| secrets)
    })();
    key.zeroize();
    result
}

/// Unwraps the data key from the first age stanza one of our identities opens.
fn data_key(md: &Metadata, ids: &Identities, file: &str) -> Result<[u8; 32], SopsError> {
    if md.shamir_groups > 1 {
        let mut kinds = vec![format!("Shamir-split key groups ({})", md.shamir_groups)];
        kinds.extend(md.other_kinds.iter().cloned());
        return Err(SopsError::UnsupportedKeyType {
            file: file.to_string(),
            kinds,
        });
    }
    if md.age.is_empty() {
        if md.other_kinds.is_empty() {
            return Err(SopsError::malformed(
                file,
                0,
                0,
                "the sops metadata lists no key at all",
            ));
        }
        return Err(SopsError::UnsupportedKeyType {
            file: file.to_string(),
            kinds: md.other_kinds.clone(),
        });
    }
    if ids.is_empty() {
        return Err(SopsError::NoKeys);
    }
    for stanza in &md.age {
        let armored = age::armor::ArmoredReader::new(stanza.enc.as_bytes());
        let Ok(decryptor) = age::Decryptor::new(armored) else {
            continue;
        };
        let Ok(mut reader) = decryptor.decrypt(
            ids.keys
                .iter()
                .map(|k| k as &dyn age::Identity)
                .chain(ids.ssh.iter().map(|k| k as &dyn age::Identity)),
        ) else {
            continue;
        };
        let mut buf = Vec::with_capacity(32);
        if reader.read_to_end(&mut buf).is_err() {
            buf.zeroize();
            continue;
        }
        if buf.len() != 32 {
            buf.zeroize();
            return Err(SopsError::malformed(
                file,
                0,
                0,
                "the age stanza holds a data key of the wrong length",
            ));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&buf);
        buf.zeroize();
        return Ok(key);
    }
    Err(SopsError::NoMatchingKey {
        file: file.to_string(),
        recipients: md.age.iter().map(|a| a.recipient.clone()).collect(),
    })
}
