//! The screen of `eventcast top` as lines of text: the same lines go to a
//! terminal (drawn in place) or, one block per refresh, to a pipe.

use super::model::{NameRow, PeerKind, PeerRow};
use crate::text::{cell, cell_right, fit};
use std::time::Duration;

/// What the header says about this node: fixed for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Where it listens: `GROUP:PORT` or `nats subject S`.
    pub listening: String,
    /// How: `udp multicast, interface any`, `nats`, ...
    pub via: String,
    /// This node's id.
    pub id: String,
    /// The refresh interval.
    pub refresh: Duration,
}

/// Everything one refresh shows.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// About this node.
    pub header: Header,
    /// The peers, busiest first.
    pub peers: Vec<PeerRow>,
    /// The busiest event names.
    pub names: Vec<NameRow>,
    /// Events of names that did not fit in the name table.
    pub other: Option<NameRow>,
    /// Names in the table, names evicted from it, events counted as other names.
    pub names_tracked: usize,
    /// Names evicted from the table so far.
    pub names_evicted: u64,
    /// Events received here per second (all names).
    pub rate_in: f64,
    /// Events received here since start.
    pub events_in: u64,
    /// Messages lost here beyond repair since start.
    pub gaps: u64,
    /// Notifications this view missed because it fell behind (its rates then undercount).
    pub dropped: u64,
    /// The latest error notice, if any (`CODE: message`).
    pub note: Option<String>,
}

/// Lines the event table keeps for itself when peers fill the screen.
const MIN_NAME_LINES: usize = 4;

/// Event names a plain (non-terminal) block lists.
pub const PLAIN_NAMES: usize = 20;

/// A rate as a short number: one decimal, `k`/`M` when large.
fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.1}M", r / 1e6)
    } else if r >= 1e4 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.1}")
    }
}

/// A count or size as a short number: `k`/`M`/`G` when large.
fn count(n: u64) -> String {
    match n {
        0..=99_999 => n.to_string(),
        100_000..=99_999_999 => format!("{}k", n / 1000),
        100_000_000..=99_999_999_999 => format!("{}M", n / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => format!("{}G", n / 1_000_000_000),
        _ => format!("{}T", n / 1_000_000_000_000),
    }
}

/// How long ago: `0.3s`, `12s`, `4m`, `2h`.
pub fn ago(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 600.0 {
        format!("{}s", d.as_secs())
    } else if s < 36_000.0 {
        format!("{}m", d.as_secs() / 60)
    } else {
        format!("{}h", d.as_secs() / 3600)
    }
}

/// `udp`, `nats`, with `bridged` / `0.1.x` when so.
pub fn kind_text(kind: &PeerKind) -> String {
    let mut s = kind.transport.to_string();
    if kind.bridged {
        s.push_str(" bridged");
    }
    if kind.legacy {
        s.push_str(" 0.1.x");
    }
    s
}

/// The peer table's header and rows (`None`: all rows).
fn peer_lines(peers: &[PeerRow], rows: usize) -> Vec<String> {
    let mut out = vec![format!(
        "{} {} {} {} {} {} {} {} {} {}",
        cell("PEER", 16),
        cell("NAME", 16),
        cell("HOST:PORT", 21),
        cell("HOSTNAME", 14),
        cell("VIA", 12),
        cell_right("IN/s", 8),
        cell_right("OUT/s", 8),
        cell_right("REPAIRS", 7),
        cell_right("GAPS", 6),
        cell_right("SEEN", 6),
    )];
    let shown = if peers.len() > rows { rows.saturating_sub(1) } else { peers.len() };
    for row in &peers[..shown] {
        let p = &row.peer;
        out.push(format!(
            "{} {} {} {} {} {} {} {} {} {}",
            cell(&p.id, 16),
            cell(p.name.as_deref().unwrap_or("-"), 16),
            cell(&format!("{}:{}", p.host, p.port), 21),
            cell(&p.hostname, 14),
            cell(&kind_text(&p.kind), 12),
            cell_right(&rate(row.rate_in), 8),
            cell_right(&rate(row.rate_out), 8),
            cell_right(&count(p.repairs_sent), 7),
            cell_right(&count(p.gaps), 6),
            cell_right(&ago(p.last_seen_ago), 6),
        ));
    }
    if shown < peers.len() {
        out.push(format!("… {} more peers", peers.len() - shown));
    }
    if peers.is_empty() {
        out.push("(no peers yet: they appear within one presence interval)".into());
    }
    out
}

/// One row of the event table.
fn name_line(name: &str, r: &NameRow) -> String {
    format!(
        "{} {} {} {} {}",
        cell(name, 32),
        cell_right(&rate(r.rate), 9),
        cell_right(&count(r.count), 9),
        cell_right(&count(r.mean_bytes), 8),
        cell_right(&count(r.max_bytes), 8),
    )
}

/// The event table's header and up to `rows` rows.
fn name_lines(view: &View, rows: usize) -> Vec<String> {
    let mut out = vec![format!(
        "{} {} {} {} {}",
        cell("EVENT", 32),
        cell_right("RATE/s", 9),
        cell_right("COUNT", 9),
        cell_right("MEAN B", 8),
        cell_right("MAX B", 8),
    )];
    let room = rows.saturating_sub(usize::from(view.other.is_some()));
    for r in view.names.iter().take(room) {
        out.push(name_line(&r.name, r));
    }
    if let Some(other) = &view.other {
        if rows > 0 {
            out.push(name_line("(other names: table full)", other));
        }
    }
    if view.names.is_empty() && view.other.is_none() {
        out.push("(no events yet)".into());
    }
    out
}

/// The screen for `view`, each line at most `width` columns. With a
/// `height` (a terminal) the lines fill at most that many rows, the peers
/// giving way to the event table when both do not fit; without one (a
/// pipe) every peer and the [`PLAIN_NAMES`] busiest names are listed.
pub fn render(view: &View, width: usize, height: Option<usize>) -> Vec<String> {
    let h = &view.header;
    let peers_word = if view.peers.len() == 1 { "peer" } else { "peers" };
    let mut lines = vec![
        format!(
            "eventcast top · {} · {} · id {} · {} {peers_word} · every {:.1}s{}",
            h.listening,
            h.via,
            h.id,
            view.peers.len(),
            h.refresh.as_secs_f64(),
            if height.is_some() { " · q quits" } else { "" }
        ),
        format!(
            "in {} ev/s · {} events · {} gaps · {} event names ({} evicted)",
            rate(view.rate_in),
            view.events_in,
            view.gaps,
            view.names_tracked,
            view.names_evicted
        ),
    ];
    if view.dropped > 0 {
        lines[1].push_str(&format!(" · {} notifications missed: top fell behind", view.dropped));
    }
    if let Some(note) = &view.note {
        lines.push(format!("last error: {note}"));
    }
    lines.push(String::new());
    match height {
        None => {
            lines.extend(peer_lines(&view.peers, usize::MAX));
            lines.push(String::new());
            lines.extend(name_lines(view, PLAIN_NAMES));
        }
        Some(height) => {
            // Header lines so far, a blank line and both tables' headers (+ one "no ..." line each).
            let left = height.saturating_sub(lines.len() + 3);
            let peer_rows = view.peers.len().max(1).min(left.saturating_sub(MIN_NAME_LINES).max(1));
            lines.extend(peer_lines(&view.peers, peer_rows));
            lines.push(String::new());
            let name_rows = height.saturating_sub(lines.len() + 1);
            lines.extend(name_lines(view, name_rows));
            lines.truncate(height);
        }
    }
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

#[cfg(test)]
mod tests;
