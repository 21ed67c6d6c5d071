//! How long events, syncs and audit entries are kept, so that the database stays bounded
//! however long driftless runs and however much noise reaches it.

use std::time::Duration;

/// A bound on one table: rows older than `max_age` go, and beyond `max_rows` the oldest
/// go. `None` means no bound of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub max_age: Option<Duration>,
    pub max_rows: Option<u64>,
}

/// Sync history is bounded per app (an app's own history must not be pushed out by a
/// busier neighbour). Running syncs and each app's newest successful sync are always
/// kept: the engine and rollbacks read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncBound {
    pub max_age: Option<Duration>,
    pub max_per_app: Option<u64>,
}

/// The retention policy of a store.
///
/// Defaults: events 30 days and at most 100,000 rows; the last 1,000 syncs of each app;
/// audit entries 90 days and at most 100,000 rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events: Bound,
    pub syncs: SyncBound,
    pub audit: Bound,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            events: Bound {
                max_age: Some(30 * DAY),
                max_rows: Some(100_000),
            },
            syncs: SyncBound {
                max_age: None,
                max_per_app: Some(1_000),
            },
            audit: Bound {
                max_age: Some(90 * DAY),
                max_rows: Some(100_000),
            },
        }
    }
}

impl Retention {
    /// Keeps everything (for tests and tools that must not delete).
    pub const KEEP_ALL: Retention = Retention {
        events: Bound {
            max_age: None,
            max_rows: None,
        },
        syncs: SyncBound {
            max_age: None,
            max_per_app: None,
        },
        audit: Bound {
            max_age: None,
            max_rows: None,
        },
    };
}

/// How many rows one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub syncs: u64,
    pub audit: u64,
}

/// The longest text kept in each audit field; longer values are cut (at a character
/// boundary) and say how much was dropped. Audit rows may be caused by anyone who can
/// reach the port, so nothing they send is stored unbounded.
pub const AUDIT_SHORT_FIELD: usize = 256;
/// The longest `detail` and `outcome` kept in an audit row.
pub const AUDIT_LONG_FIELD: usize = 1024;

/// `text` cut to at most `max` bytes (marker included) at a character boundary.
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    // The marker names how many bytes were dropped; reserve room for its longest form.
    const MARKER_ROOM: usize = 32;
    let mut cut = max.saturating_sub(MARKER_ROOM);
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}…[{} more bytes]",
        &text[..cut],
        text.len() - cut
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_bounded_and_keeps_characters_whole() {
        assert_eq!(truncate("short", 256), "short");
        let long = "é".repeat(10_000);
        let cut = truncate(&long, 256);
        assert!(cut.len() <= 256, "{}", cut.len());
        assert!(cut.ends_with("more bytes]"), "{cut}");
        assert!(cut.starts_with("éé"));
        assert!(truncate(&long, 0).len() <= 40);
    }
}
