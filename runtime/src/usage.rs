//! This process's resident memory and CPU use, for each Snapshot.
//!
//! On Linux both come from two small files of `/proc/self`: sysinfo's process refresh
//! lists every process and thread under `/proc` even when asked for one process
//! (about 1 ms on a quiet machine, far more on a busy host, at the start, every tick
//! and at the end of the run). Elsewhere sysinfo refreshes this process only.

use std::time::Instant;

/// Reads this process's figures; CPU use is measured between two reads.
pub(crate) struct ProcessUsage {
    inner: Inner,
}

impl ProcessUsage {
    pub(crate) fn new() -> Self {
        Self {
            inner: Inner::new(),
        }
    }

    /// Resident bytes now, and CPU used since the previous call in percent of one core
    /// (0 at the first call). Zeros if the figures cannot be read.
    pub(crate) fn sample(&mut self) -> (u64, f64) {
        self.inner.sample(Instant::now())
    }
}

/// The most resident memory this process has had, as the kernel keeps it (`VmHWM`);
/// 0 where it keeps none. Unlike a sample per tick, it misses no short peak.
pub(crate) fn peak_rss_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    return linux::status_bytes("VmHWM:").unwrap_or(0);
    #[cfg(not(target_os = "linux"))]
    return 0;
}

#[cfg(target_os = "linux")]
struct Inner {
    /// CPU seconds used by the process and when, at the previous read.
    last: Option<(f64, Instant)>,
}

#[cfg(target_os = "linux")]
impl Inner {
    fn new() -> Self {
        Self { last: None }
    }

    fn sample(&mut self, now: Instant) -> (u64, f64) {
        let rss = linux::status_bytes("VmRSS:").unwrap_or(0);
        let Some(cpu_s) = linux::cpu_seconds() else {
            return (rss, 0.0);
        };
        let percent = match self.last.replace((cpu_s, now)) {
            Some((before, then)) if now > then => {
                (cpu_s - before).max(0.0) / (now - then).as_secs_f64() * 100.0
            }
            _ => 0.0,
        };
        (rss, percent)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// Clock ticks per second of `/proc` CPU times: USER_HZ, 100 on every Linux
    /// platform Rust targets.
    const TICKS_PER_S: f64 = 100.0;

    /// User plus system CPU time of the whole process, seconds.
    pub(super) fn cpu_seconds() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces and parentheses: count from the
        // last ')'. The next field is the state (3); utime and stime are 14 and 15.
        let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace();
        let utime: u64 = fields.nth(11)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some((utime + stime) as f64 / TICKS_PER_S)
    }

    /// A size of `/proc/self/status` (`VmRSS:`, resident now; `VmHWM:`, its peak), bytes.
    pub(super) fn status_bytes(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix(field))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib * 1024)
    }
}

#[cfg(not(target_os = "linux"))]
struct Inner {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
}

#[cfg(not(target_os = "linux"))]
impl Inner {
    fn new() -> Self {
        Self {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    fn sample(&mut self, _now: Instant) -> (u64, f64) {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        let Some(pid) = self.pid else {
            return (0, 0.0);
        };
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        self.system
            .process(pid)
            .map_or((0, 0.0), |p| (p.memory(), f64::from(p.cpu_usage())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_and_cpu_of_this_process() {
        let mut usage = ProcessUsage::new();
        let (rss, first) = usage.sample();
        assert_eq!(first, 0.0, "no CPU figure before a second read");
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 100 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let (_, cpu) = usage.sample();
        if cfg!(target_os = "linux") {
            assert!(rss > 1 << 20, "a test binary holds more than 1 MiB: {rss}");
            assert!(cpu > 0.0, "a busy thread shows");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_peak_is_the_kernels_high_water_mark_not_a_sample() {
        let before = peak_rss_bytes();
        // 64 MiB touched and freed between two samples: no tick would see it.
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        drop(block);
        let after = peak_rss_bytes();
        assert!(
            after >= before.max(64 << 20),
            "VmHWM {after} after touching 64 MiB (was {before})"
        );
    }
}
