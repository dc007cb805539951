//! The monotonic clock, read directly.

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `std::time::Instant` reads
/// on Linux, without `Instant`'s checked `timespec` subtraction, which
/// costs more than the read itself on the hub's hot paths (a deadline
/// armed per read, the timers fired per turn).
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail (and were it to, `ts` stays
    // zero: a clock standing still, never undefined behaviour).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // Seconds since boot: no overflow for 584 years.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
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
}
