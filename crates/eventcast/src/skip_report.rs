//! How a Rust test that cannot run here says so.
//!
//! Cargo's test harness has no run-time "skipped": a test that finds its
//! precondition missing (no nested network namespace, an old kernel) can only
//! return early, and is then counted as passed. Such a test calls
//! [`skipped`] before returning. It prints the reason, and when
//! `EVENTCAST_SKIP_LOG` names a file (`npm test` sets it, see
//! `scripts/test.js`) appends one line `test: reason` to it; the runner lists
//! those lines in its summary and counts them as skipped, not passed.
//!
//! Compiled into the library's own unit tests (`#[cfg(test)]`) and included
//! by path into the integration tests' support module, so both report the
//! same way.
#![allow(dead_code)] // not every test binary that includes it skips

use std::io::Write;

/// The environment variable naming the file skipped tests are appended to.
pub const SKIP_LOG_ENV: &str = "EVENTCAST_SKIP_LOG";

/// Records that `test` did not run, and why.
pub fn skipped(test: &str, reason: &str) {
    eprintln!("SKIPPED: {test}: {reason}");
    let Some(path) = std::env::var_os(SKIP_LOG_ENV) else { return };
    // One write of one short line with O_APPEND: lines of tests running in
    // parallel threads or processes do not interleave.
    let line = format!("{test}: {}\n", reason.replace('\n', " "));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    // A skip that cannot be recorded must not pass silently.
    if let Err(e) = written {
        panic!("{test} was skipped ({reason}) and the skip could not be recorded in {path:?}: {e}");
    }
}
