//! Test helper: code on a thread of its own in a fresh network namespace.
//!
//! Used by the unit tests of `socket` and, through `#[path]`, by the socket
//! tests in `tests/` (`node_support`). Network namespaces belong to threads:
//! after `unshare(CLONE_NEWNET)` the calling thread, the sockets it opens,
//! the processes it spawns (`ip` for the setup) and the threads it starts
//! (a tokio runtime built there) all live in the new namespace, which starts
//! with nothing but a loopback that is down: nothing sent in it can reach a
//! real network, wherever the test process itself runs. Two such threads,
//! joined by a veth pair, are two hosts on one link.
#![allow(dead_code)] // each test binary uses a different part

use std::process::Command;

/// Moves the calling thread into a new, empty network namespace. Needs
/// CAP_SYS_ADMIN (root, or root of a user namespace as `scripts/netns-run.sh`
/// makes); the error says why it failed, for a skip report.
pub fn enter_fresh_netns() -> Result<(), String> {
    // SAFETY: unshare(2) with CLONE_NEWNET touches only the calling thread's namespace membership.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "cannot make a network namespace: unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Runs `script` with `sh -c` (in the calling thread's namespace); its
/// stderr in the error when it fails.
pub fn run_sh(script: &str) -> Result<(), String> {
    let out = Command::new("sh").arg("-c").arg(script).output().map_err(|e| format!("cannot run sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{script}` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Runs `f` on a new thread in a fresh namespace prepared by `setup` (a
/// shell script; it starts with loopback down). `Err(reason)` when the
/// namespace or its setup cannot be made, for the caller to report as
/// skipped; a panic in `f` is the caller's.
pub fn on_fresh_netns<T: Send + 'static>(setup: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let setup = setup.to_string();
    let thread = std::thread::spawn(move || -> Result<T, String> {
        enter_fresh_netns()?;
        run_sh(&setup)?;
        Ok(f())
    });
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// What `setup` of [`on_fresh_netns`] needs for IPv6 multicast on loopback
/// alone: `lo` up (it carries `::1`) and the multicast range as a local
/// route. A plain `ff00::/8 dev lo` route would not do: the kernel turns
/// routes through loopback into reject routes unless they are local.
pub const IPV6_LOOPBACK_SETUP: &str = "ip link set lo up && ip -6 route add local ff00::/8 dev lo table local";

/// The calling thread's network namespace as a path, for
/// `ip link set DEV netns PATH` (iproute2 takes a path where a name would be).
pub fn thread_netns_path() -> String {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    format!("/proc/{}/task/{tid}/ns/net", std::process::id())
}
