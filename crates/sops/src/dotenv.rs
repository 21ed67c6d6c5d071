//! dotenv as sops reads and writes it: `KEY=value` lines, `#` comment lines, `\n` escapes, and
//! metadata flattened into `sops_…` keys.

use std::collections::{HashMap, HashSet};

use crate::SopsError;
use crate::tree::{AgeKey, Entry, Metadata, Value};

/// The document entries and the flattened `sops_` metadata items of a dotenv file.
type Parsed = (Vec<Entry>, Vec<(String, String)>);

/// Splits a dotenv file into the document entries and the flattened `sops_` metadata items.
pub(crate) fn parse(data: &[u8], file: &str) -> Result<Parsed, SopsError> {
    let text = String::from_utf8_lossy(data);
    let mut entries = Vec::new();
    let mut meta = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            entries.push(Entry::Comment(c.to_string()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(SopsError::malformed(
                file,
                i + 1,
                1,
                "invalid dotenv line (no '=')",
            ));
        };
        let v = v.replace("\\n", "\n");
        if let Some(mk) = k.strip_prefix("sops_") {
            meta.push((mk.to_string(), v));
        } else {
            entries.push(Entry::Pair(k.to_string(), Value::Str(v)));
        }
    }
    Ok((entries, meta))
}

/// Whether the flattened items carry sops metadata.
pub(crate) fn has_metadata(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut mac = false;
    let mut lastmodified = false;
    for line in text.split('\n') {
        mac |= line.starts_with("sops_mac=");
        lastmodified |= line.starts_with("sops_lastmodified=");
    }
    mac && lastmodified
}

/// Rebuilds metadata from flattened keys such as `age__list_0__map_enc`.
pub(crate) fn metadata(items: &[(String, String)], file: &str) -> Result<Metadata, SopsError> {
    let mut md = Metadata::default();
    // Indexed lookups: a file may carry any number of these keys, and a linear search per
    // key made reading a large metadata block quadratic.
    let mut ages: Vec<AgeKey> = Vec::new();
    let mut age_at: HashMap<(String, usize), usize> = HashMap::new();
    let mut groups: HashSet<String> = HashSet::new();
    for (k, v) in items {
        match k.as_str() {
            "lastmodified" => md.lastmodified = v.clone(),
            "mac" => md.mac = v.clone(),
            "unencrypted_suffix" => md.unencrypted_suffix = v.clone(),
            "encrypted_suffix" => md.encrypted_suffix = v.clone(),
            "unencrypted_regex" => md.unencrypted_regex = v.clone(),
            "encrypted_regex" => md.encrypted_regex = v.clone(),
            "unencrypted_comment_regex" => md.unencrypted_comment_regex = v.clone(),
            "encrypted_comment_regex" => md.encrypted_comment_regex = v.clone(),
            "mac_only_encrypted" => md.mac_only_encrypted = v == "true",
            _ => {
                // key_groups__list_N__map_KIND__list_M__map_FIELD or KIND__list_M__map_FIELD
                let (group, rest) = match k.strip_prefix("key_groups__list_") {
                    Some(r) => {
                        let (g, rest) = r.split_once("__map_").unwrap_or((r, ""));
                        if !groups.contains(g) {
                            groups.insert(g.to_string());
                        }
                        (g.to_string(), rest)
                    }
                    None => (String::new(), k.as_str()),
                };
                let Some((kind, rest)) = rest.split_once("__list_") else {
                    continue;
                };
                let (index, field) = rest.split_once("__map_").unwrap_or((rest, ""));
                let index: usize = index.parse().unwrap_or(0);
                if kind == "age" {
                    let pos = *age_at.entry((group, index)).or_insert_with(|| {
                        ages.push(AgeKey {
                            recipient: String::new(),
                            enc: String::new(),
                        });
                        ages.len() - 1
                    });
                    match field {
                        "recipient" => ages[pos].recipient = v.clone(),
                        "enc" => ages[pos].enc = v.clone(),
                        _ => {}
                    }
                } else if ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"].contains(&kind)
                    && !md.other_kinds.iter().any(|x| x == kind)
                {
                    md.other_kinds.push(kind.to_string());
                }
            }
        }
    }
    if groups.len() > 1 {
        md.shamir_groups = groups.len();
    }
    md.age = ages;
    md.check(file)?;
    Ok(md)
}

/// Prints entries the way `sops -d` prints dotenv.
pub(crate) fn emit(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        match e {
            Entry::Comment(c) => {
                out.push('#');
                out.push_str(c);
            }
            Entry::Pair(k, v) => {
                out.push_str(k);
                out.push('=');
                match v {
                    Value::Str(s) => out.push_str(&s.replace('\n', "\\n")),
                    other => out.push_str(&crate::yaml::scalar_text(other)),
                }
            }
        }
        out.push('\n');
    }
    out
}
