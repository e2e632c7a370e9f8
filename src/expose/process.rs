//! Process CPU and resident memory from procfs (Linux); absent elsewhere.

/// CPU and memory of this process, when /proc can tell.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
}

/// Linux reports CPU time in clock ticks of 1/100 s on every mainstream architecture.
const CLOCK_TICKS: f64 = 100.0;

/// Reads this process's CPU time and resident memory from /proc.
pub fn sample() -> Sample {
    Sample {
        cpu_seconds: std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| cpu_from_stat(&s)),
        resident_bytes: std::fs::read_to_string("/proc/self/status").ok().and_then(|s| rss_from_status(&s)),
    }
}

/// utime + stime, fields 14 and 15; the command name (field 2) may contain spaces, so count
/// from the closing parenthesis.
fn cpu_from_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

fn rss_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10";
        assert_eq!(cpu_from_stat(stat), Some(3.0));
    }

    #[test]
    fn parses_rss() {
        assert_eq!(rss_from_status("Name:\tx\nVmRSS:\t  2048 kB\n"), Some(2048 * 1024));
        assert_eq!(rss_from_status("Name:\tx\n"), None);
    }
}
