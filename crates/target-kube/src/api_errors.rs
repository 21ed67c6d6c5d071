//! Reading the API server's errors: one-line texts, status codes, refusals and
//! server-side apply conflicts.

/// A kube error in one line: the server's reason, code and message for API errors.
pub(crate) fn kube_error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} ({}): {}", status.reason, status.code, status.message)
        }
        other => other.to_string(),
    }
}

/// Whether a write failed because its namespace does not exist (404 `namespaces "x" not
/// found`).
pub(crate) fn namespace_missing(e: &kube::Error) -> bool {
    matches!(api_status(e), Some((404, message)) if message.starts_with("namespaces \""))
}

pub(crate) fn api_status(e: &kube::Error) -> Option<(u16, &str)> {
    match e {
        kube::Error::Api(status) => Some((status.code, status.message.as_str())),
        _ => None,
    }
}

/// Whether an API error is the server refusing the object itself (it fails the same way
/// until the manifest changes) rather than a passing condition. Server-side apply
/// answers 500 "failed to create typed patch object" for a value of the wrong type.
pub(crate) fn refuses_object(code: u16, message: &str) -> bool {
    ((400..500).contains(&code) && code != 429)
        || (code == 500 && message.contains("failed to create typed patch object"))
}

/// `field manager "a"` or `field managers "a", "b"`.
pub(crate) fn quoted_list(managers: &[String]) -> String {
    let names: Vec<String> = managers.iter().map(|m| format!("{m:?}")).collect();
    let plural = if managers.len() == 1 { "" } else { "s" };
    format!("field manager{plural} {}", names.join(", "))
}

/// The managers an SSA 409 names (`conflict with "a" using apps/v1: .spec.replicas`).
pub(crate) fn conflict_managers(message: &str) -> Vec<String> {
    let mut managers: Vec<String> = Vec::new();
    for part in message.split("conflict with \"").skip(1) {
        if let Some((name, _)) = part.split_once('"')
            && !managers.iter().any(|m| m == name)
        {
            managers.push(name.to_owned());
        }
    }
    managers
}

/// `conflict with field manager(s) "a", "b": <server message>` for an SSA 409.
pub(crate) fn conflict_detail(message: &str) -> String {
    let managers = conflict_managers(message);
    if managers.is_empty() {
        return format!("field manager conflict: {message}");
    }
    let names: Vec<String> = managers.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "conflict with field manager(s) {}: {message}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_patch_failures_are_refusals() {
        assert!(refuses_object(422, "Deployment.apps \"x\" is invalid"));
        assert!(refuses_object(
            500,
            "failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): \
             .spec.replicas: expected numeric (int or float), got string"
        ));
        assert!(!refuses_object(500, "etcdserver: request timed out"));
        assert!(!refuses_object(429, "too many requests"));
    }

    #[test]
    fn conflicts_name_the_other_managers() {
        let msg = "Apply failed with 2 conflicts: conflict with \"intruder\" using v1: \
                   .data.a\nconflict with \"kubectl-edit\" using v1: .data.b";
        assert_eq!(
            conflict_detail(msg),
            format!("conflict with field manager(s) \"intruder\", \"kubectl-edit\": {msg}")
        );
        assert_eq!(conflict_detail("odd"), "field manager conflict: odd");
    }
}
