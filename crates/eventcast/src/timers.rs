//! The timer task: runs the endpoint's timers (repair requests, give-ups,
//! heartbeats, retention expiry) and retries sends a full socket buffer queued.

use super::send::Lane;
use super::state::Shared;
use super::supervise::DriverTask;
use super::transport::Link;
use super::Notification;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long queued datagrams wait before the next attempt when the socket
/// buffer was full (the send socket is not in the reactor; see the module docs).
pub(super) const SEND_RETRY: Duration = Duration::from_millis(1);

/// Timer task: runs the endpoint's timers and flushes queued sends through `link`.
pub(super) async fn timer_loop(shared: Arc<Shared>, link: Link) {
    let mut notes: Vec<Notification> = Vec::new();
    // Timers run at most once per millisecond, even if the engine keeps
    // asking for a deadline that has already passed.
    let mut earliest_next = tokio::time::Instant::now();
    let mut clock_warned = false;
    loop {
        shared.fault_point(DriverTask::Timer);
        let (deadline, has_pending) = {
            let core = shared.core();
            (core.deadline, !core.send.is_empty())
        };
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let sleep_until = deadline.map(tokio::time::Instant::from_std).unwrap_or(far).max(earliest_next);
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                earliest_next = tokio::time::Instant::now() + Duration::from_millis(1);
                let mut core = shared.core();
                if let Some(ep) = core.endpoint.as_mut() {
                    let now = Instant::now();
                    // Re-anchor wall time so days of uptime do not drift from the system clock.
                    if let Err(e) = ep.set_wall_clock(now, SystemTime::now()) {
                        // The engine keeps counting from its last anchor; say so once.
                        if !clock_warned {
                            clock_warned = true;
                            tracing::warn!("eventcast: {e}; keeping the wall time counted since the last good reading");
                        }
                    }
                    ep.handle_timeout(now);
                }
                // A deadline that did not move would spin; forget it so pump re-reads it.
                core.deadline = None;
                let _ = core.pump(&shared, Lane::Urgent);
                notes.append(&mut core.notes);
            }
            _ = tokio::time::sleep(SEND_RETRY), if has_pending => {
                let mut core = shared.core();
                shared.fault_point(DriverTask::SendFlush);
                core.flush(&shared, &link);
                notes.append(&mut core.notes);
            }
        }
        shared.deliver(&mut notes);
    }
}
