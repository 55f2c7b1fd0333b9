//! `eventcast top`: a live view of the group. Peers with their rates in
//! and out, repairs, gaps and when they were last heard; the busiest event
//! names with their rates and sizes. Drawn in place on a terminal (`q` or
//! Ctrl-C quits), one block of plain lines per refresh on a pipe.

pub mod model;
pub mod render;
pub mod term;

use crate::common::{finish, print_out, start_node, terminated, via, where_listening, Common};
use eventcast::{Eventcast, Notification, PeerInfo};
use model::{EventNames, PeerKind, PeerRates, PeerSample, RateMeter};
use render::{render, Header, View};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};
use term::{Key, Keys, Screen};

/// `eventcast top`, checked.
#[derive(Debug)]
pub struct Top {
    /// Node options.
    pub common: Common,
    /// Time between refreshes.
    pub interval: Duration,
    /// Exit after this many refreshes.
    pub iterations: Option<u64>,
}

/// The shortest refresh interval `--interval` accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The window rates average over: four presence intervals (a peer's own
/// counters rise once per beacon; over four beacons, give or take one, the
/// rate is within a quarter) and at least two refreshes.
fn rate_window(refresh: Duration, presence: Duration) -> Duration {
    (presence * 4).max(refresh * 2)
}

/// What the events seen so far add up to.
struct Seen {
    names: EventNames,
    events: u64,
    gaps: u64,
    note: Option<String>,
    /// Reused to measure each event's arguments as their BSON body.
    body: Vec<u8>,
}

impl Seen {
    fn take(&mut self, n: Notification) {
        match n {
            Notification::Event(e) => {
                self.events += 1;
                // Received arguments passed the receiver's checks, so they encode;
                // were one to fail, its size counts as 0 rather than stopping `top`.
                let bytes = match eventcast::wire::body::try_encode_args_into(&e.args, &mut self.body) {
                    Ok(()) => self.body.len() as u64,
                    Err(_) => 0,
                };
                self.names.record(&e.name, bytes);
            }
            Notification::Gap { count, .. } => self.gaps = self.gaps.saturating_add(count),
            Notification::Error { code, message } => self.note = Some(format!("{code}: {message}")),
            // The peer table is read from `peers()` at each refresh.
            Notification::Drain
            | Notification::PeerUp(_)
            | Notification::PeerDown { .. }
            | Notification::PeerUpdate(_)
            | Notification::Request(_)
            | Notification::Reply(_) => {}
        }
    }
}

/// What `top` shows of a peer, as of `now`.
fn sample(p: PeerInfo, now: SystemTime) -> PeerSample {
    PeerSample {
        kind: PeerKind { transport: p.transport.as_str(), bridged: p.bridged, legacy: p.legacy },
        last_seen_ago: now.duration_since(p.last_seen).unwrap_or_default(),
        delivered: p.delivered,
        events_sent: p.stats.events_sent,
        repairs_sent: p.stats.repairs_sent,
        gaps: p.gaps,
        id: p.id,
        host: p.host,
        port: p.port,
        name: p.name,
        hostname: p.hostname,
    }
}

/// The peers of `node` as `top` samples them.
fn peer_samples(node: &Eventcast) -> Vec<PeerSample> {
    let now = SystemTime::now();
    node.peers().into_iter().map(|p| sample(p, now)).collect()
}

/// Runs the view until `q`, Ctrl-C, SIGTERM or the last iteration.
pub async fn top(cmd: Top) -> Result<(), String> {
    let (node, mut events) = start_node(cmd.common.options.clone()).await?;
    let tty = std::io::stdout().is_terminal();
    let header = Header {
        listening: where_listening(&node),
        via: via(node.options()),
        id: node.id().to_string(),
        refresh: cmd.interval,
    };
    let presence = node.options().presence.as_ref().map(|p| p.interval).unwrap_or(Duration::from_secs(1));
    let window = rate_window(cmd.interval, presence);
    let mut seen =
        Seen { names: EventNames::new(window), events: 0, gaps: 0, note: None, body: Vec::with_capacity(4096) };
    let mut peer_rates = PeerRates::new(window);
    let mut rate_in = RateMeter::new(window);
    let mut keys = if tty { Some(Keys::spawn().map_err(|e| format!("cannot read keys: {e}"))?) } else { None };
    let mut screen = if tty { Some(Screen::enter().map_err(|e| format!("terminal: {e}"))?) } else { None };
    let mut ticker = tokio::time::interval(cmd.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut buf = Vec::with_capacity(1024);
    let mut refreshes = 0u64;
    let mut view: Option<View> = None;
    let result: Result<(), String> = loop {
        let redraw_only = tokio::select! {
            got = events.recv_many(&mut buf, 1024) => {
                if got == 0 {
                    break Err("the node's notification stream ended".into());
                }
                for n in buf.drain(..) {
                    seen.take(n);
                }
                continue;
            }
            _ = ticker.tick() => false,
            key = async { match keys.as_mut() { Some(k) => k.next().await, None => std::future::pending().await } } => {
                match key {
                    Key::Quit => break Ok(()),
                    Key::Redraw => true,
                }
            }
            _ = &mut ctrl_c => break Ok(()),
            _ = terminated() => break Ok(()),
        };
        if term::panicked() {
            break Err("a thread panicked (see above)".into());
        }
        if !redraw_only || view.is_none() {
            let now = Instant::now();
            seen.names.tick(now);
            let peers = peer_rates.update(now, peer_samples(&node));
            let other = seen.names.other();
            view = Some(View {
                header: header.clone(),
                peers,
                names: seen.names.busiest(model::MAX_NAMES),
                other,
                names_tracked: seen.names.tracked(),
                names_evicted: seen.names.evicted(),
                rate_in: rate_in.update(now, seen.events),
                events_in: seen.events,
                gaps: seen.gaps,
                dropped: node.stats().notifications_dropped,
                note: seen.note.clone(),
            });
        }
        let Some(v) = &view else { continue };
        let shown = match screen.as_mut() {
            Some(s) => {
                let (w, h) = Screen::size();
                s.draw(&render(v, w, Some(h))).map_err(|e| format!("stdout: {e}"))
            }
            None => {
                let mut block = render(v, usize::MAX, None).join("\n");
                block.push_str("\n\n");
                match print_out(&block) {
                    Ok(false) => break Ok(()),
                    other => other.map(drop),
                }
            }
        };
        if let Err(e) = shown {
            break Err(e);
        }
        if !redraw_only {
            refreshes += 1;
            if cmd.iterations.is_some_and(|n| refreshes >= n) {
                break Ok(());
            }
        }
    };
    drop(screen);
    drop(keys);
    let finished = finish(&node, &mut events, cmd.common.stats).await;
    result.and(finished)
}
