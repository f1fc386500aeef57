//! The process's own figures for `/metrics` (the `process_*` series Prometheus' client
//! libraries expose), read from `/proc/self` on Linux. Elsewhere, or when a file cannot be
//! read, the figures it would give are left out.

use std::path::Path;

/// Clock ticks per second of the times in `/proc/<pid>/stat` and `/proc/stat` (`USER_HZ`):
/// fixed at 100 in the kernel's ABI on the architectures ctct-sync is built for, whatever
/// the kernel's internal tick rate.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` tells about the process; each figure is `None` when its file could not
/// be read or parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessFigures {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: Option<f64>,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on open file descriptors (`None` when unlimited).
    pub max_fds: Option<f64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// Reads the figures of the running process.
pub fn read() -> ProcessFigures {
    read_from(Path::new("/proc"))
}

/// Reads the figures of `<proc>/self`, with the boot time from `<proc>/stat`.
fn read_from(proc: &Path) -> ProcessFigures {
    let text = |name: &str| std::fs::read_to_string(proc.join(name)).ok();
    let stat = text("self/stat").and_then(|s| parse_stat(&s));
    let boot = text("stat").and_then(|s| parse_boot_time(&s));
    let open_fds = std::fs::read_dir(proc.join("self/fd"))
        .ok()
        // The directory handle read_dir holds open is among the entries: leave it out.
        .map(|entries| entries.count().saturating_sub(1) as f64);
    ProcessFigures {
        cpu_seconds: stat.as_ref().map(|s| s.cpu_ticks as f64 / USER_HZ),
        resident_memory_bytes: text("self/status").and_then(|s| parse_status_kib(&s, "VmRSS")),
        virtual_memory_bytes: stat.as_ref().map(|s| s.virtual_bytes as f64),
        open_fds,
        max_fds: text("self/limits").and_then(|s| parse_max_open_files(&s)),
        start_time_seconds: match (&stat, boot) {
            (Some(s), Some(boot)) => Some(boot as f64 + s.start_ticks as f64 / USER_HZ),
            _ => None,
        },
    }
}

/// The fields of `/proc/<pid>/stat` the metrics use.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Clock ticks from boot to the process's start.
    start_ticks: u64,
    virtual_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// A `Key:   N kB` line of `/proc/<pid>/status`, in bytes.
fn parse_status_kib(text: &str, key: &str) -> Option<f64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    (parts.next() == Some("kB")).then_some(value as f64 * 1024.0)
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`; `None` when unlimited.
fn parse_max_open_files(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()
        .map(|v| v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis_of_the_command_name() {
        // A command name with a space and a parenthesis of its own.
        let text = "4242 (ctct (sync) x) S 1 4242 4242 0 -1 4194560 1200 0 3 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                cpu_ticks: 325,
                start_ticks: 123456,
                virtual_bytes: 987654321,
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn boot_time_memory_and_the_open_files_limit_are_read_from_their_lines() {
        let stat = "cpu  1 2 3 4\nintr 5\nbtime 1764979200\nprocesses 77\n";
        assert_eq!(parse_boot_time(stat), Some(1_764_979_200));
        assert_eq!(parse_boot_time("cpu 1 2\n"), None);

        let status = "Name:\tctct-sync\nVmPeak:\t  999 kB\nVmRSS:\t   2048 kB\nThreads:\t9\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2048.0 * 1024.0));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);

        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024.0));
        let unlimited = limits.replace("1024 ", "unlimited ");
        assert_eq!(parse_max_open_files(&unlimited), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_running_process_reads_its_own_figures() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let during = read();
        drop(file);
        let figures = read();
        assert!(figures.cpu_seconds.unwrap() >= 0.0);
        assert!(figures.resident_memory_bytes.unwrap() > 0.0);
        assert!(figures.virtual_memory_bytes.unwrap() >= figures.resident_memory_bytes.unwrap());
        assert!(
            figures
                .max_fds
                .is_none_or(|max| max >= figures.open_fds.unwrap())
        );
        let started = figures.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            started <= now + 1.0 && started > now - 24.0 * 3600.0,
            "{started} vs {now}"
        );
        // The file held open is counted (other tests' files may be too).
        assert!(during.open_fds.unwrap() >= 1.0);
    }
}
