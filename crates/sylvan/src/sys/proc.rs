//! Facts about the running process.

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub(crate) fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * super::mem::page_size())
}
