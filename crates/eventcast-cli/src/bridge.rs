//! `eventcast bridge`: relay datagrams between a multicast group and a NATS subject.

use crate::common::{sleep_until_opt, terminated};
use eventcast::{Bridge, BridgeOptions};
use std::time::Duration;

/// `eventcast bridge`, checked.
#[derive(Debug)]
pub struct BridgeCmd {
    /// Both sides of the bridge.
    pub options: BridgeOptions,
    /// Exit after this long.
    pub timeout: Option<Duration>,
    /// Print the bridge's counters at exit.
    pub stats: bool,
}

/// Relays until SIGINT, SIGTERM or the timeout, then prints the counters if asked.
pub async fn bridge(cmd: BridgeCmd) -> Result<(), String> {
    let group = cmd.options.multicast.multicast_membership;
    let port = cmd.options.multicast.port;
    let bridge = Bridge::start(cmd.options).await.map_err(|e| format!("start failed ({}): {e}", e.code()))?;
    eprintln!(
        "bridging {} <-> nats subject {} interface {}",
        crate::group_arg::group_port(group, port),
        bridge.subject(),
        bridge.interface()
    );
    let deadline = cmd.timeout.map(|t| tokio::time::Instant::now() + t);
    tokio::select! {
        _ = sleep_until_opt(deadline) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    let stats = bridge.stats();
    bridge.stop().await;
    if cmd.stats {
        let map: serde_json::Map<String, serde_json::Value> =
            stats.fields().into_iter().map(|(name, v)| (name.to_owned(), v.into())).collect();
        eprintln!("stats {}", serde_json::Value::Object(map));
    }
    Ok(())
}
