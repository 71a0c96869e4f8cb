//! Who this worker is: host name and a default id.

/// The machine's host name, read without extra dependencies: the `HOSTNAME` variable, then
/// the kernel's name on Linux, then `"localhost"`.
pub(crate) fn hostname() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_env
        .or_else(from_kernel)
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `{hostname}-{pid}-{4 random hex digits}`: readable in `quern workers list` and in job
/// leases, and unique even when
/// a restarted process reuses a pid on the same host.
pub(crate) fn default_worker_id(hostname: &str) -> String {
    format!(
        "{hostname}-{}-{:04x}",
        std::process::id(),
        fastrand::u16(..)
    )
}
