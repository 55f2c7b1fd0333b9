//! `eventcast peers`: who is on the group (presence), as a table or JSON
//! lines, once or as the changes happen.

use crate::common::{
    finish, print_notice, print_out, sleep_until_opt, start_node, terminated, via, where_listening, Common,
};
use crate::text::{cell, clean, fit, json_for_terminal};
use crate::top::model::PeerKind;
use crate::top::render::{ago, kind_text};
use eventcast::{peer_json, Notification, PeerInfo};
use std::time::{Duration, SystemTime};

/// `eventcast peers`, checked.
#[derive(Debug)]
pub struct Peers {
    /// Node options (presence on).
    pub common: Common,
    /// One JSON object per line instead of a table.
    pub json: bool,
    /// Keep running and print each change.
    pub watch: bool,
    /// With `watch`: exit after this long.
    pub timeout: Option<Duration>,
}

/// How long `peers` listens before printing: peers beacon once per
/// interval (±10%), so an interval and a half, and at least a quarter of a
/// second more than one, has heard every live peer.
fn listen_for(interval: Duration) -> Duration {
    interval + (interval / 2).max(Duration::from_millis(250))
}

/// `udp`, `nats bridged`, ... of a peer.
fn kind(p: &PeerInfo) -> String {
    kind_text(&PeerKind { transport: p.transport.as_str(), bridged: p.bridged, legacy: p.legacy })
}

/// The peer's `meta` as compact JSON (relaxed extended JSON, as `--json` prints it).
fn meta_text(p: &PeerInfo) -> String {
    bson::Bson::Document(p.meta.clone()).into_relaxed_extjson().to_string()
}

/// How long before `now` a peer's time was (`-` for a time ahead of ours:
/// `since` is the peer's own clock).
fn age(now: SystemTime, t: SystemTime) -> String {
    now.duration_since(t).map(ago).unwrap_or_else(|_| "-".into())
}

/// The peer table: a header and one line per peer, every field cleaned of
/// what a terminal would act on.
pub fn table(peers: &[PeerInfo], now: SystemTime) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {} {} {} {} {} {} {} {} META",
        cell("ID", 16),
        cell("NAME", 16),
        cell("HOST:PORT", 21),
        cell("HOSTNAME", 14),
        cell("PID", 7),
        cell("VERSION", 8),
        cell("VIA", 12),
        cell("SINCE", 6),
        cell("SEEN", 6),
    )];
    for p in peers {
        lines.push(format!(
            "{} {} {} {} {} {} {} {} {} {}",
            cell(&p.id, 16),
            cell(p.name.as_deref().unwrap_or("-"), 16),
            cell(&format!("{}:{}", p.host, p.port), 21),
            cell(&p.hostname, 14),
            cell(&p.pid.map_or("-".into(), |pid| pid.to_string()), 7),
            cell(p.version.as_deref().unwrap_or("-"), 8),
            cell(&kind(p), 12),
            cell(&age(now, p.since), 6),
            cell(&age(now, p.last_seen), 6),
            fit(&meta_text(p), 200),
        ));
    }
    lines
}

/// The line `--watch` prints for a change of the peer table (`None`: not a change).
pub fn change_line(n: &Notification, json: bool) -> Option<String> {
    let (what, peer, reason) = match n {
        Notification::PeerUp(p) => ("peerUp", p, None),
        Notification::PeerDown { peer, reason } => ("peerDown", peer, Some(reason.as_str())),
        Notification::PeerUpdate(p) => ("peerUpdate", p, None),
        _ => return None,
    };
    if json {
        let mut v = serde_json::json!({ "event": what, "peer": peer_json(peer) });
        if let Some(r) = reason {
            v["reason"] = r.into();
        }
        return Some(json_for_terminal(&v.to_string()));
    }
    let word = match (what, reason) {
        ("peerUp", _) => "up".to_string(),
        (_, Some(r)) => format!("down ({r})"),
        _ => "update".to_string(),
    };
    Some(format!(
        "{} {} {} {}:{} {} {} pid {} meta {}",
        cell(&word, 16),
        clean(&peer.id),
        clean(peer.name.as_deref().unwrap_or("-")),
        clean(&peer.host),
        peer.port,
        clean(&peer.hostname),
        kind(peer),
        peer.pid.map_or("-".into(), |pid| pid.to_string()),
        clean(&meta_text(peer)),
    ))
}

/// Lists the peers heard within about one interval, or with `watch` prints
/// each change until Ctrl-C, SIGTERM or the timeout.
pub async fn peers(cmd: Peers) -> Result<(), String> {
    let (node, mut events) = start_node(cmd.common.options.clone()).await?;
    let o = node.options();
    let interval = o.presence.as_ref().map(|p| p.interval).ok_or("presence is off")?;
    eprintln!(
        "listening on {} ({}) id={} name={}",
        where_listening(&node),
        via(o),
        node.id(),
        clean(o.name.as_deref().unwrap_or("-"))
    );
    let now = tokio::time::Instant::now();
    let deadline = if cmd.watch { cmd.timeout.map(|t| now + t) } else { Some(now + listen_for(interval)) };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut buf = Vec::with_capacity(256);
    let mut interrupted = false;
    'watch: loop {
        tokio::select! {
            got = events.recv_many(&mut buf, 256) => {
                if got == 0 {
                    return Err("the node's notification stream ended".into());
                }
                for n in buf.drain(..) {
                    if !cmd.watch {
                        continue;
                    }
                    match change_line(&n, cmd.json) {
                        Some(line) => {
                            if !print_out(&format!("{line}\n"))? {
                                break 'watch;
                            }
                        }
                        None => print_notice(n),
                    }
                }
            }
            _ = sleep_until_opt(deadline) => break,
            _ = &mut ctrl_c => { interrupted = true; break }
            _ = terminated() => { interrupted = true; break }
        }
    }
    if !cmd.watch && !interrupted {
        let mut list = node.peers();
        list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        let lines = if cmd.json {
            list.iter().map(|p| json_for_terminal(&peer_json(p).to_string())).collect()
        } else {
            table(&list, SystemTime::now())
        };
        // No peers and --json: no lines at all (an empty line is not a JSON object).
        if !lines.is_empty() {
            let mut text = lines.join("\n");
            text.push('\n');
            print_out(&text)?;
        }
    }
    finish(&node, &mut events, cmd.common.stats).await
}

#[cfg(test)]
mod tests;
