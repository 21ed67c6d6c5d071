//! The document tree sops works on, its metadata, and the decrypting walk that also
//! recomputes the MAC.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use regex::Regex;
use sha2::{Digest, Sha512};

use crate::SopsError;
use crate::gofmt;

/// A node of a document, as sops models it after loading a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Map(Vec<Entry>),
    Seq(Vec<Value>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A timestamp, kept in Go's RFC 3339 (nano) text form.
    Time(String),
    Null,
    /// A comment line without its '#'; only inside sequences (maps hold [`Entry::Comment`]).
    Comment(String),
    /// A decrypted string that is not valid UTF-8 (binary files hold raw bytes).
    Bytes(Vec<u8>),
}

/// One item of a mapping: a key with its value, or a comment line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Pair(String, Value),
    Comment(String),
}

/// Documents whose decrypted strings are overwritten when dropped.
pub(crate) struct Docs(pub Vec<Vec<Entry>>);

impl std::ops::Deref for Docs {
    type Target = Vec<Vec<Entry>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Docs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Docs {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|d| wipe(d));
    }
}

/// Overwrites every string of a decrypted tree.
fn wipe(entries: &mut [Entry]) {
    use zeroize::Zeroize;
    for e in entries {
        match e {
            Entry::Comment(c) => c.zeroize(),
            Entry::Pair(k, v) => {
                k.zeroize();
                v.wipe();
            }
        }
    }
}

impl Value {
    fn wipe(&mut self) {
        use zeroize::Zeroize;
        match self {
            Value::Map(entries) => wipe(entries),
            Value::Seq(items) => items.iter_mut().for_each(Value::wipe),
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.zeroize(),
            Value::Bytes(b) => b.zeroize(),
            Value::Int(i) => *i = 0,
            Value::Float(f) => *f = 0.0,
            Value::Bool(b) => *b = false,
            Value::Null => {}
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find_map(|e| match e {
                Entry::Pair(k, v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Time(s) => Some(s),
            _ => None,
        }
    }
}

/// One age stanza of the metadata.
#[derive(Debug, Clone)]
pub(crate) struct AgeKey {
    pub recipient: String,
    pub enc: String,
}

/// The parts of the `sops` metadata that decryption needs.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    pub age: Vec<AgeKey>,
    /// Key kinds present that we cannot use (pgp, kms, …).
    pub other_kinds: Vec<String>,
    /// More than one key group: Shamir secret sharing, not supported.
    pub shamir_groups: usize,
    pub lastmodified: String,
    pub mac: String,
    pub unencrypted_suffix: String,
    pub encrypted_suffix: String,
    pub unencrypted_regex: String,
    pub encrypted_regex: String,
    pub unencrypted_comment_regex: String,
    pub encrypted_comment_regex: String,
    pub mac_only_encrypted: bool,
}

/// Most age stanzas a file may carry; real files list a handful of recipients.
pub(crate) const MAX_AGE_RECIPIENTS: usize = 1_000;

const OTHER_KINDS: [&str; 5] = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"];

impl Metadata {
    /// Reads metadata from the `sops` map of a YAML or JSON document.
    pub(crate) fn from_value(v: &Value, file: &str) -> Result<Metadata, SopsError> {
        let mut md = Metadata::default();
        let text = |key: &str| -> String {
            match v.get(key) {
                Some(Value::Str(s)) | Some(Value::Time(s)) => s.clone(),
                Some(Value::Int(i)) => i.to_string(),
                _ => String::new(),
            }
        };
        md.lastmodified = text("lastmodified");
        md.mac = text("mac");
        md.unencrypted_suffix = text("unencrypted_suffix");
        md.encrypted_suffix = text("encrypted_suffix");
        md.unencrypted_regex = text("unencrypted_regex");
        md.encrypted_regex = text("encrypted_regex");
        md.unencrypted_comment_regex = text("unencrypted_comment_regex");
        md.encrypted_comment_regex = text("encrypted_comment_regex");
        md.mac_only_encrypted = match v.get("mac_only_encrypted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            _ => false,
        };
        md.read_group(v);
        if let Some(Value::Seq(groups)) = v.get("key_groups") {
            let groups: Vec<&Value> = groups
                .iter()
                .filter(|g| !matches!(g, Value::Comment(_)))
                .collect();
            if groups.len() > 1 {
                md.shamir_groups = groups.len();
            }
            for g in groups {
                md.read_group(g);
            }
        }
        md.check(file)?;
        Ok(md)
    }

    fn read_group(&mut self, g: &Value) {
        if let Some(Value::Seq(items)) = g.get("age") {
            for item in items {
                let recipient = item.get("recipient").and_then(Value::as_str).unwrap_or("");
                let enc = item.get("enc").and_then(Value::as_str).unwrap_or("");
                self.age.push(AgeKey {
                    recipient: recipient.to_string(),
                    enc: enc.to_string(),
                });
            }
        }
        for kind in OTHER_KINDS {
            if let Some(Value::Seq(items)) = g.get(kind)
                && !items.is_empty()
                && !self.other_kinds.iter().any(|k| k == kind)
            {
                self.other_kinds.push(kind.to_string());
            }
        }
    }

    pub(crate) fn check(&mut self, file: &str) -> Result<(), SopsError> {
        self.other_kinds.sort();
        if self.age.len() > MAX_AGE_RECIPIENTS {
            // Each stanza costs a key agreement per identity when decrypting.
            return Err(SopsError::limit(
                file,
                0,
                0,
                format!(
                    "the sops metadata lists {} age recipients, more than the limit of {MAX_AGE_RECIPIENTS}",
                    self.age.len()
                ),
            ));
        }
        if self.lastmodified.is_empty() || self.mac.is_empty() {
            return Err(SopsError::NotEncrypted {
                file: file.to_string(),
            });
        }
        let rules = [
            &self.unencrypted_suffix,
            &self.encrypted_suffix,
            &self.unencrypted_regex,
            &self.encrypted_regex,
            &self.unencrypted_comment_regex,
            &self.encrypted_comment_regex,
        ];
        let count = rules.iter().filter(|r| !r.is_empty()).count();
        if count > 1 {
            return Err(SopsError::malformed(
                file,
                0,
                0,
                "sops metadata sets more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex",
            ));
        }
        if count == 0 {
            self.unencrypted_suffix = "_unencrypted".to_string();
        }
        Ok(())
    }

    /// The additional data the MAC is encrypted with: `lastmodified` as Go prints RFC 3339.
    pub(crate) fn mac_aad(&self) -> String {
        normalize_rfc3339(&self.lastmodified)
    }
}

/// Go parses `lastmodified` and prints it again with RFC 3339 (no fraction, `Z` for UTC).
fn normalize_rfc3339(s: &str) -> String {
    let (main, zone) = match s.rfind(['Z', 'z', '+', '-']) {
        Some(i) if i > 10 => (&s[..i], &s[i..]),
        _ => (s, ""),
    };
    let main = main.split('.').next().unwrap_or(main);
    let zone = match zone {
        "z" | "Z" | "+00:00" | "-00:00" => "Z",
        z => z,
    };
    format!("{main}{zone}")
}

/// Which leaves are encrypted, from the metadata's rules.
pub(crate) struct Rules {
    unencrypted_suffix: String,
    encrypted_suffix: String,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
    unencrypted_comment_regex: Option<Regex>,
    encrypted_comment_regex: Option<Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    pub(crate) fn new(md: &Metadata, file: &str) -> Result<Rules, SopsError> {
        let re = |name: &str, s: &str| -> Result<Option<Regex>, SopsError> {
            if s.is_empty() {
                return Ok(None);
            }
            Regex::new(s).map(Some).map_err(|_| {
                SopsError::malformed(
                    file,
                    0,
                    0,
                    format!("sops metadata {name} is not a valid regular expression"),
                )
            })
        };
        Ok(Rules {
            unencrypted_suffix: md.unencrypted_suffix.clone(),
            encrypted_suffix: md.encrypted_suffix.clone(),
            unencrypted_regex: re("unencrypted_regex", &md.unencrypted_regex)?,
            encrypted_regex: re("encrypted_regex", &md.encrypted_regex)?,
            unencrypted_comment_regex: re(
                "unencrypted_comment_regex",
                &md.unencrypted_comment_regex,
            )?,
            encrypted_comment_regex: re("encrypted_comment_regex", &md.encrypted_comment_regex)?,
            mac_only_encrypted: md.mac_only_encrypted,
        })
    }

    fn should_be_encrypted(
        &self,
        path: &[String],
        comments: &[Vec<String>],
        is_comment: bool,
    ) -> bool {
        let mut encrypted = true;
        if !self.unencrypted_suffix.is_empty()
            && path.iter().any(|p| p.ends_with(&self.unencrypted_suffix))
        {
            encrypted = false;
        }
        if !self.encrypted_suffix.is_empty() {
            encrypted = path.iter().any(|p| p.ends_with(&self.encrypted_suffix));
        }
        if let Some(re) = &self.unencrypted_regex
            && path.iter().any(|p| re.is_match(p))
        {
            encrypted = false;
        }
        if let Some(re) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| re.is_match(p));
        }
        if let Some(re) = &self.unencrypted_comment_regex
            && comments.iter().flatten().any(|c| re.is_match(c))
        {
            encrypted = false;
        }
        if let Some(re) = &self.encrypted_comment_regex {
            // The comment line that matches is itself left in clear: skip the newest comment
            // when judging a comment.
            let last_frame = comments.len().saturating_sub(1);
            let last_len = comments.last().map_or(0, Vec::len);
            encrypted = comments.iter().enumerate().any(|(i, frame)| {
                frame.iter().enumerate().any(|(j, c)| {
                    !(is_comment && i == last_frame && j + 1 == last_len) && re.is_match(c)
                })
            });
        }
        encrypted
    }
}

type Gcm = AesGcm<Aes256, aes_gcm::aead::consts::U32>;

/// A parsed `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value.
struct EncValue {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse_enc(s: &str) -> Option<EncValue> {
    let inner = s.strip_prefix("ENC[AES256_GCM,data:")?;
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    let (data, rest) = inner.split_once(",iv:")?;
    let (iv, rest) = rest.split_once(",tag:")?;
    let (tag, kind) = rest.split_once(",type:")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Some(EncValue {
        data: b64.decode(data).ok()?,
        iv: b64.decode(iv).ok()?,
        tag: b64.decode(tag).ok()?,
        kind: kind.to_string(),
    })
}

/// Why one value could not be decrypted.
pub(crate) enum ValueError {
    /// Not in the ENC[…] format.
    Format,
    /// Authentication failed.
    Auth,
    /// Decrypted, but the text does not fit its declared type.
    Type(String),
}

/// Decrypts one value with the data key, `aad` being the path joined with ':' plus ':'.
pub(crate) fn decrypt_value(s: &str, key: &[u8; 32], aad: &str) -> Result<Value, ValueError> {
    if s.is_empty() {
        return Ok(Value::Str(String::new()));
    }
    let enc = parse_enc(s).ok_or(ValueError::Format)?;
    if enc.iv.len() != 32 || enc.tag.len() != 16 {
        return Err(ValueError::Format);
    }
    let cipher = Gcm::new(key.into());
    let mut ct = enc.data;
    ct.extend_from_slice(&enc.tag);
    let plain = cipher
        .decrypt(
            Nonce::<aes_gcm::aead::consts::U32>::from_slice(&enc.iv),
            Payload {
                msg: &ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| ValueError::Auth)?;
    let text = match String::from_utf8(plain) {
        Ok(text) => text,
        Err(e) if matches!(enc.kind.as_str(), "str" | "bytes") => {
            return Ok(Value::Bytes(e.into_bytes()));
        }
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let bad = |what: &str| ValueError::Type(format!("decrypted value is not a valid {what}"));
    Ok(match enc.kind.as_str() {
        "str" | "bytes" => Value::Str(text),
        "int" => Value::Int(text.parse().map_err(|_| bad("int"))?),
        "float" => Value::Float(text.parse().map_err(|_| bad("float"))?),
        "bool" => Value::Bool(match text.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(bad("bool")),
        }),
        "time" => Value::Time(text),
        "comment" => Value::Comment(text),
        other => return Err(ValueError::Type(format!("unknown value type '{other}'"))),
    })
}

/// The bytes a leaf contributes to the MAC.
fn mac_bytes(v: &Value) -> Option<Vec<u8>> {
    if let Value::Bytes(b) = v {
        return Some(b.clone());
    }
    mac_text(v).map(String::into_bytes)
}

/// The text form of a scalar leaf, as sops writes it into the MAC.
pub(crate) fn mac_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) | Value::Time(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => gofmt::format_f(*f),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        _ => return None,
    })
}

const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Decrypts a tree in place, recomputes the MAC and collects the secret values.
pub(crate) struct Walker<'a> {
    pub rules: &'a Rules,
    pub key: &'a [u8; 32],
    pub file: &'a str,
    hash: Sha512,
    pub secrets: Vec<String>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(rules: &'a Rules, key: &'a [u8; 32], file: &'a str) -> Self {
        let mut hash = Sha512::new();
        if rules.mac_only_encrypted {
            hash.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Walker {
            rules,
            key,
            file,
            hash,
            secrets: Vec::new(),
        }
    }

    /// The MAC over everything walked so far, as sops prints it (upper-case hex).
    pub(crate) fn mac(self) -> (String, Vec<String>) {
        let digest = self.hash.finalize();
        let hex = digest.iter().map(|b| format!("{b:02X}")).collect();
        (hex, self.secrets)
    }

    pub(crate) fn walk_branch(&mut self, entries: &mut [Entry]) -> Result<(), SopsError> {
        let mut path = Vec::new();
        let mut stack = Vec::new();
        self.walk_map(entries, &mut path, &mut stack)
    }

    fn walk_map(
        &mut self,
        entries: &mut [Entry],
        path: &mut Vec<String>,
        stack: &mut Vec<Vec<String>>,
    ) -> Result<(), SopsError> {
        stack.push(Vec::new());
        for entry in entries.iter_mut() {
            match entry {
                Entry::Comment(c) => {
                    stack
                        .last_mut()
                        .expect("frame pushed above")
                        .push(c.clone());
                    let out = self.leaf(Value::Comment(std::mem::take(c)), path, stack)?;
                    *c = match out {
                        Value::Comment(s) | Value::Str(s) => s,
                        other => mac_text(&other).unwrap_or_default(),
                    };
                }
                Entry::Pair(k, v) => {
                    path.push(k.clone());
                    self.walk_value(v, path, stack)?;
                    path.pop();
                    stack.last_mut().expect("frame pushed above").clear();
                }
            }
        }
        stack.pop();
        Ok(())
    }

    fn walk_value(
        &mut self,
        v: &mut Value,
        path: &mut Vec<String>,
        stack: &mut Vec<Vec<String>>,
    ) -> Result<(), SopsError> {
        match v {
            Value::Map(entries) => self.walk_map(entries, path, stack),
            Value::Seq(items) => {
                stack.push(Vec::new());
                for item in items.iter_mut() {
                    let is_comment = matches!(item, Value::Comment(_));
                    if let Value::Comment(c) = item {
                        stack
                            .last_mut()
                            .expect("frame pushed above")
                            .push(c.clone());
                    }
                    self.walk_value(item, path, stack)?;
                    if !is_comment {
                        stack.last_mut().expect("frame pushed above").clear();
                    }
                }
                stack.pop();
                Ok(())
            }
            Value::Null => Ok(()),
            _ => {
                let taken = std::mem::replace(v, Value::Null);
                *v = self.leaf(taken, path, stack)?;
                Ok(())
            }
        }
    }

    fn leaf(
        &mut self,
        v: Value,
        path: &[String],
        stack: &[Vec<String>],
    ) -> Result<Value, SopsError> {
        let is_comment = matches!(v, Value::Comment(_));
        let encrypted = self.rules.should_be_encrypted(path, stack, is_comment);
        let out = if encrypted {
            let aad = format!("{}:", path.join(":"));
            match &v {
                Value::Comment(c) => decrypt_value(c, self.key, &aad).unwrap_or(v),
                Value::Str(s) => match decrypt_value(s, self.key, &aad) {
                    Ok(out) => {
                        match &out {
                            Value::Comment(_) => {}
                            other => {
                                if let Some(text) = mac_bytes(other)
                                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                                    && !text.is_empty()
                                {
                                    self.secrets.push(text);
                                }
                            }
                        }
                        out
                    }
                    Err(ValueError::Auth) => {
                        return Err(SopsError::Tampered {
                            file: self.file.to_string(),
                            path: path.join(":"),
                        });
                    }
                    Err(ValueError::Format) => {
                        return Err(SopsError::malformed(
                            self.file,
                            0,
                            0,
                            format!(
                                "the value at '{}' should be encrypted but is not in sops' ENC[AES256_GCM,…] format",
                                path.join(":")
                            ),
                        ));
                    }
                    Err(ValueError::Type(reason)) => {
                        return Err(SopsError::malformed(
                            self.file,
                            0,
                            0,
                            format!("{reason} at '{}'", path.join(":")),
                        ));
                    }
                },
                _ => {
                    return Err(SopsError::malformed(
                        self.file,
                        0,
                        0,
                        format!(
                            "the value at '{}' should be encrypted but is a plain non-string value",
                            path.join(":")
                        ),
                    ));
                }
            }
        } else {
            v
        };
        if (!self.rules.mac_only_encrypted || encrypted)
            && let Some(bytes) = mac_bytes(&out)
        {
            self.hash.update(&bytes);
        }
        Ok(out)
    }
}

/// Decrypts the stored MAC and compares it with the computed one.
pub(crate) fn verify_mac(
    md: &Metadata,
    key: &[u8; 32],
    computed: &str,
    file: &str,
) -> Result<(), SopsError> {
    let stored = match decrypt_value(&md.mac, key, &md.mac_aad()) {
        Ok(Value::Str(s)) => s,
        _ => {
            return Err(SopsError::MacMismatch {
                file: file.to_string(),
            });
        }
    };
    // Constant-time comparison is not needed for a MAC we recomputed ourselves, but cheap.
    let equal = stored.len() == computed.len()
        && stored
            .bytes()
            .zip(computed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if equal {
        Ok(())
    } else {
        Err(SopsError::MacMismatch {
            file: file.to_string(),
        })
    }
}
