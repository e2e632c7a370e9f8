//! Checks of names the API server would reject and of timings that cannot work, so a typo
//! fails at load time, not as a 400, an empty watch or a dead watch task in production.

use std::time::Duration;

/// The bounds of the watch timings, stated in the error messages and docs/configuration.md.
pub(super) const RESYNC_BOUNDS: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(86_400));
pub(super) const WATCH_TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(290));
pub(super) const IDLE_BOUNDS: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(600));

/// `24h`, `10m`, `290s`: a bound as the docs write it.
fn short(d: Duration) -> String {
    match d.as_secs() {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s < 3600 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn within(key: &str, d: Duration, (lo, hi): (Duration, Duration), why: &str) -> Result<(), String> {
    if d < lo || d > hi {
        return Err(format!(
            "key `{key}`: {} is out of range; it must be between {} and {} ({why})",
            humantime::format_duration(d),
            short(lo),
            short(hi)
        ));
    }
    Ok(())
}

/// `resync`, `watchTimeout` and `watchIdleTimeout` within their bounds.
pub(super) fn check_timing(resync: Duration, watch_timeout: Duration, idle: Duration) -> Result<(), String> {
    within("resync", resync, RESYNC_BOUNDS, "each re-list is a full list of the watched objects")?;
    within(
        "watchTimeout",
        watch_timeout,
        WATCH_TIMEOUT_BOUNDS,
        "the API server's own limit is 290s; keep it below your load balancer's idle timeout",
    )?;
    within(
        "watchIdleTimeout",
        idle,
        IDLE_BOUNDS,
        "the watch cache sends a bookmark about every minute; shorter reopens healthy quiet watches",
    )
}

/// A target name: it becomes the `target` label, so it must be short and plain.
pub(super) fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key `name`: {name:?} is not a valid target name; use 1-63 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A namespace name (RFC 1123 label).
pub(crate) fn validate_dns_label(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok { Ok(()) } else { Err(format!("{ns:?} is not a valid namespace name (lowercase RFC 1123 label)")) }
}
