//! The clocks, read directly: monotonic for the hub, coarse wall-clock
//! seconds for dates.

/// Reads `clock`; `None` if the call failed (it cannot for the clocks
/// used here, which Linux has had since 2.6.32, but a sandbox may refuse).
#[inline]
fn read(clock: libc::clockid_t) -> Option<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; on failure (EINVAL for
    // an unknown clock id) the call leaves it as it was.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then_some(ts)
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `std::time::Instant` reads
/// on Linux, without `Instant`'s checked `timespec` subtraction, which
/// costs more than the read itself on the hub's hot paths (a deadline
/// armed per read, the timers fired per turn).
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    // Were the read to fail: a clock standing still at zero, never
    // undefined behaviour.
    let ts = read(libc::CLOCK_MONOTONIC).unwrap_or(libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    });
    // Seconds since boot: no overflow for 584 years.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Whole seconds of `CLOCK_REALTIME_COARSE` since the Unix epoch: the
/// wall clock as of the last timer tick (a few milliseconds behind at
/// most), read without the time counter, about a quarter of the cost of a
/// precise read. For what changes once a second: the HTTP `Date` header.
/// A clock set before 1970 reads 0. Should the coarse clock be refused,
/// the precise wall clock is read instead.
#[inline]
pub(crate) fn realtime_coarse_secs() -> u64 {
    match read(libc::CLOCK_REALTIME_COARSE) {
        Some(ts) => u64::try_from(ts.tv_sec).unwrap_or(0),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn it_is_the_clock_instant_reads() {
        // Each read of one clock lies between reads of the other: were
        // they different clocks (CLOCK_BOOTTIME, REALTIME), the elapsed
        // times around a sleep would disagree by far more than the reads.
        let (i0, m0) = (Instant::now(), monotonic_ns());
        std::thread::sleep(Duration::from_millis(20));
        let (m1, i1) = (monotonic_ns(), Instant::now());
        let by_instant = i1.duration_since(i0).as_nanos() as u64;
        let by_us = m1 - m0;
        assert!(by_us <= by_instant, "{by_us} > {by_instant}");
        assert!(by_us >= 20_000_000, "{by_us}");
    }

    #[test]
    fn coarse_seconds_are_the_wall_clock_seconds() {
        // Read between two precise reads of the wall clock: a coarse
        // clock lags the precise one by at most a tick (well under a
        // second), so it lies in [before − 1, after].
        let secs =
            |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let before = secs(std::time::SystemTime::now());
        let coarse = realtime_coarse_secs();
        let after = secs(std::time::SystemTime::now());
        assert!(
            before.saturating_sub(1) <= coarse && coarse <= after,
            "{before} {coarse} {after}"
        );
    }
}
