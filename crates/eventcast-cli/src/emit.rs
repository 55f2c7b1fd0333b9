//! `eventcast emit`: send an event, then stay up to answer repair requests.

use crate::common::{finish, print_notice, start_node, Common};
use bson::Bson;
use eventcast::{Events, Notification};
use std::time::Duration;

/// `eventcast emit`, checked.
#[derive(Debug)]
pub struct Emit {
    /// Node options.
    pub common: Common,
    /// Send the event this many times.
    pub repeat: u64,
    /// At most this many events per second.
    pub rate: Option<f64>,
    /// Stay up this long after the last send.
    pub linger: Option<Duration>,
    /// Event name.
    pub name: String,
    /// Event arguments.
    pub args: Vec<Bson>,
}

/// Waits for [`Notification::Drain`], printing other notifications meanwhile.
async fn wait_for_drain(events: &mut Events) -> Result<(), String> {
    loop {
        match events.recv().await {
            Some(Notification::Drain) => return Ok(()),
            Some(other) => print_notice(other),
            None => return Err("node dropped while waiting for the send queue to drain".into()),
        }
    }
}

/// Sends the event `repeat` times at the rate asked, then lingers.
pub async fn emit(cmd: Emit) -> Result<(), String> {
    let (node, mut events) = start_node(cmd.common.options.clone()).await?;
    if let eventcast::Transport::Multicast = node.options().transport {
        eprintln!(
            "sending to {} id={}{}",
            crate::common::where_listening(&node),
            node.id(),
            crate::common::interface_note(&node)
        );
    }
    let started = tokio::time::Instant::now();
    for i in 0..cmd.repeat {
        if let Some(rate) = cmd.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if due > tokio::time::Instant::now() + Duration::from_millis(1) {
                tokio::time::sleep_until(due).await;
            }
        }
        loop {
            match node.emit(&cmd.name, &cmd.args) {
                Ok(()) => break,
                // A slow link: wait until the send queue drained, then emit again.
                Err(eventcast::Error::Backpressure { .. }) => wait_for_drain(&mut events).await?,
                Err(e) => return Err(format!("emit failed ({}): {e}", e.code())),
            }
        }
    }
    // Default: one message-ttl (capped at 10 s). The engine heartbeats every ttl/6 for
    // three periods after the last event so receivers notice tail loss, and a repair
    // round takes ~ttl/8 plus jitter: a ttl covers that with retries (1 s did not at 10% loss).
    let linger = cmd.linger.unwrap_or_else(|| node.options().message_ttl.min(Duration::from_secs(10)));
    tokio::time::sleep(linger).await;
    finish(&node, &mut events, cmd.common.stats).await
}
