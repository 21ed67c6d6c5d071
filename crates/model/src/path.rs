//! Relative paths inside a repository or a target root, kept from escaping it.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is absolute; only paths relative to a root are accepted.
    #[error("path {0:?} is absolute; expected a path relative to the root")]
    Absolute(String),
    /// `..` components would climb above the root.
    #[error("path {0:?} leaves the root")]
    EscapesRoot(String),
    /// NUL bytes or backslashes have no portable meaning in a tree path.
    #[error("path {0:?} contains a NUL byte or a backslash")]
    BadCharacter(String),
}

/// Normalizes a `/`-separated relative path: drops `.` and empty components, resolves
/// `..` against earlier components and refuses any `..` that would leave the root.
/// The root itself is the empty string.
pub fn normalize_rel_path(path: &str) -> Result<String, PathError> {
    if path.contains('\0') || path.contains('\\') {
        return Err(PathError::BadCharacter(path.to_owned()));
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute(path.to_owned()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::EscapesRoot(path.to_owned()));
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Joins `target` (for example a symlink's target) onto directory `base`, both relative
/// to the same root, and normalizes the result. An absolute `target` is refused, as is
/// any result outside the root.
pub fn join_inside(base: &str, target: &str) -> Result<String, PathError> {
    if target.starts_with('/') {
        return Err(PathError::Absolute(target.to_owned()));
    }
    let joined = if base.is_empty() {
        target.to_owned()
    } else {
        format!("{base}/{target}")
    };
    normalize_rel_path(&joined).map_err(|err| match err {
        PathError::EscapesRoot(_) => PathError::EscapesRoot(target.to_owned()),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dots_and_slashes() {
        assert_eq!(normalize_rel_path("./a//b/./c/").unwrap(), "a/b/c");
        assert_eq!(normalize_rel_path("a/b/../c").unwrap(), "a/c");
        assert_eq!(normalize_rel_path("").unwrap(), "");
        assert_eq!(normalize_rel_path("a/..").unwrap(), "");
    }

    #[test]
    fn refuses_escape_absolute_and_odd_bytes() {
        assert!(matches!(
            normalize_rel_path("../x"),
            Err(PathError::EscapesRoot(_))
        ));
        assert!(matches!(
            normalize_rel_path("a/../../x"),
            Err(PathError::EscapesRoot(_))
        ));
        assert!(matches!(
            normalize_rel_path("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            normalize_rel_path("a\\b"),
            Err(PathError::BadCharacter(_))
        ));
        assert!(matches!(
            normalize_rel_path("a\0b"),
            Err(PathError::BadCharacter(_))
        ));
    }

    #[test]
    fn joins_symlink_targets_inside_the_root() {
        assert_eq!(
            join_inside("apps/web", "../shared/x.yaml").unwrap(),
            "apps/shared/x.yaml"
        );
        assert_eq!(join_inside("", "x").unwrap(), "x");
        assert!(matches!(
            join_inside("apps", "../../etc"),
            Err(PathError::EscapesRoot(_))
        ));
        assert!(matches!(
            join_inside("apps", "/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
    }
}
