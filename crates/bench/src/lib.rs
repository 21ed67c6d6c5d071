//! driftless-bench: the benchmark suite that runs driftless and Flux side by side on one
//! real cluster (testenv) and one Git repository served on loopback.
//!
//! The library holds what any benchmark needs: figures as median with min–max, process
//! CPU and memory from /proc, the date for result files, and a smart-HTTP Git server.
//! It must not reach into driftless's crates: both tools are driven from the outside,
//! through their binaries, their APIs and the cluster, exactly as a user would.

pub mod gitserver;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Median, min and max of a set of measurements, in one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Figure {
    /// The figure of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Figure> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Figure {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs: n,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max, "runs": self.runs})
    }

    /// `12.3 (11.0–14.2)`, or just the value for a single run.
    pub fn display(&self, decimals: usize) -> String {
        if self.runs == 1 || self.min == self.max {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} ({:.*}–{:.*})",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

/// CPU seconds used so far and resident memory of one process, from /proc.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStat {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

impl ProcStat {
    /// Reads /proc/<pid>/stat and /proc/<pid>/status; `None` when the process is gone.
    pub fn read(pid: u32) -> Option<ProcStat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        let after = stat.get(stat.rfind(')')? + 2..)?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Some(ProcStat {
            cpu_seconds: (utime + stime) / clock_ticks_per_second(),
            rss_bytes: rss_kb * 1024,
        })
    }

    /// The sum over several processes (a tool made of more than one).
    pub fn read_all(pids: &[u32]) -> Option<ProcStat> {
        pids.iter().try_fold(ProcStat::default(), |sum, &pid| {
            let one = ProcStat::read(pid)?;
            Some(ProcStat {
                cpu_seconds: sum.cpu_seconds + one.cpu_seconds,
                rss_bytes: sum.rss_bytes + one.rss_bytes,
            })
        })
    }
}

/// USER_HZ. It is 100 on every Linux this runs on; `getconf` confirms it when present.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Today's date (UTC) as `YYYY-MM-DD`, for result file names.
pub fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 86_400)
        .unwrap_or(0);
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Runs git with no system or user configuration and a fixed identity; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Bench Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_median_odd_even_and_empty() {
        let f = Figure::of(&[3.0, 1.0, 2.0]).expect("figure");
        assert_eq!((f.median, f.min, f.max, f.runs), (2.0, 1.0, 3.0, 3));
        let f = Figure::of(&[4.0, 1.0, 2.0, 3.0]).expect("figure");
        assert_eq!(f.median, 2.5);
        assert_eq!(f.display(1), "2.5 (1.0–4.0)");
        assert_eq!(Figure::of(&[7.0]).expect("one").display(0), "7");
        assert!(Figure::of(&[]).is_none());
    }

    #[test]
    fn own_process_is_readable() {
        let me = ProcStat::read(std::process::id()).expect("own /proc entry");
        assert!(me.rss_bytes > 0);
        assert!(ProcStat::read(u32::MAX).is_none());
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
    }
}
