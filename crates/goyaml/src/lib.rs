//! Facts of go-yaml's scalar resolution, shared by the emitters that must print YAML
//! exactly as Go tools do (kustomize's output, `sops -d`'s output): which plain scalars
//! go-yaml would read back as floats, and so must be quoted when they are strings.
//!
//! Pure functions over text, no dependencies. It must not grow an emitter of its own.

/// Whether go-yaml resolves `s` as a float by its float pattern
/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Whether `s` is a YAML 1.1 base-60 float (`190:20:30.15`), which go-yaml's encoder
/// quotes so that YAML 1.1 readers do not take it for a number:
/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() && i - st < 2 {
            i += 1;
        }
        let g = &b[st..i];
        let ok = match g.len() {
            1 => true,
            2 => g[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_go_yaml_patterns() {
        for yes in ["1.5", "-1.", ".5", "1e3", "+2E-4", "10"] {
            assert!(is_yaml_float(yes), "{yes}");
        }
        for no in ["", ".", "1e", "e3", "1.2.3", "0x10", "1_000.0", " 1"] {
            assert!(!is_yaml_float(no), "{no}");
        }
        for yes in ["190:20:30.15", "1:20", "-1:59", "12_3:0:5"] {
            assert!(is_base60_float(yes), "{yes}");
        }
        for no in ["1:60", "1:", ":30", "1:2:345", "abc", "1.5"] {
            assert!(!is_base60_float(no), "{no}");
        }
    }
}
