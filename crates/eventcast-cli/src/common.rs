//! What the subcommands share: the node options every node-starting command
//! takes, starting a node, printing notices and counters, waiting for a signal.

use crate::group_arg::{group_and_interface, group_arg, group_port, GroupArg};
use bson::Bson;
use clap::Args;
use eventcast::{
    EncryptOptions, Eventcast, Events, MulticastInterface, NatsOptions, Notification, Options, Stats, Transport,
};
use std::net::IpAddr;
use std::time::Duration;

/// Common options of every subcommand that starts a node; what is not given
/// keeps the library's default ([`Options::default`], 0.1.x's).
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// UDP port of the group
    #[arg(long)]
    port: u16,
    /// Multicast group, IPv4 or IPv6; an IPv6 one may name its interface: ff12::1%eth0 [default: 224.0.0.1]
    #[arg(long, value_name = "ADDR", value_parser = group_arg)]
    group: Option<GroupArg>,
    /// Address to bind [default: 0.0.0.0, any]
    #[arg(long, value_name = "ADDR")]
    address: Option<IpAddr>,
    /// Interface to join and send on: a name (eth1), an address of it, or an index
    /// [default: any; link-local IPv6 groups need one]
    #[arg(long, value_name = "IF")]
    interface: Option<MulticastInterface>,
    /// Multicast TTL (IPv6: hop limit) [default: 1]
    #[arg(long, value_name = "N")]
    ttl: Option<u32>,
    /// Do not receive datagrams sent from this host
    #[arg(long)]
    no_loopback: bool,
    /// Chunk size [default: 1024]
    #[arg(long, value_name = "BYTES")]
    max_payload_size: Option<usize>,
    /// Reassembly timeout [default: 3000]
    #[arg(long, value_name = "MS")]
    message_ttl_ms: Option<u64>,
    /// Encrypt with KEY (the authenticated default scheme)
    #[arg(long)]
    key: Option<String>,
    /// With --key: the unauthenticated 0.1.x scheme, for 0.1.x fleets
    #[arg(long, requires = "key")]
    legacy: bool,
    /// Print counters as a JSON line (`stats {...}`) on stderr at exit
    #[arg(long)]
    stats: bool,
    /// Use a NATS server instead of multicast (comma-separated URLs: nats://host:4222,...);
    /// the multicast options (--group, --address, --interface, --ttl, --no-loopback) do not apply
    #[arg(long, value_name = "URL", conflicts_with_all = ["group", "address", "interface", "ttl", "no_loopback"])]
    nats: Option<String>,
    /// With --nats: the subject [default: eventcast.<port>]
    #[arg(long, value_name = "S", requires = "nats")]
    subject: Option<String>,
    /// With --nats and --key: the multicast group of the encrypted LAN a bridge pairs this
    /// node with (the key is bound to group and port; the subject does not change) [default: 224.0.0.1]
    #[arg(long, value_name = "ADDR", requires = "nats")]
    nats_group: Option<IpAddr>,
    /// The label this node advertises to its peers [default: the program's name;
    /// `eventcast peers` and `eventcast top`: eventcast-peers, eventcast-top]
    #[arg(long = "name", id = "node_name", value_name = "NAME")]
    node_name: Option<String>,
    /// The application object this node advertises, a JSON object (at most 1 KiB
    /// encoded), e.g. '{"role":"pricing"}'
    #[arg(long, value_name = "JSON")]
    meta: Option<String>,
    /// Send a presence beacon every MS milliseconds [default: 1000]
    #[arg(long, value_name = "MS")]
    presence_interval: Option<u64>,
    /// A peer not heard from for MS milliseconds is down (at least twice the interval) [default: 5000]
    #[arg(long, value_name = "MS")]
    presence_timeout: Option<u64>,
    /// No presence: send no beacons, keep no peer table (not for `peers` and `top`)
    #[arg(long, conflicts_with_all = ["meta", "presence_interval", "presence_timeout"])]
    no_presence: bool,
}

/// The node options of a command, checked, and whether to print counters at exit.
#[derive(Debug)]
pub struct Common {
    /// The node's options, validated.
    pub options: Options,
    /// `--stats`: print the counters on stderr at exit.
    pub stats: bool,
}

impl CommonArgs {
    /// The options these flags give, checked against the library's bounds;
    /// `name` is the label advertised when `--name` is not given (`None`:
    /// the library's default, the program's name).
    pub fn into_common(self, name: Option<&str>) -> Result<Common, String> {
        let mut options = Options { port: self.port, ..Options::default() };
        let (group, interface) = group_and_interface(self.group, self.interface)?;
        if let Some(g) = group {
            options.multicast_membership = g;
        }
        if let Some(a) = self.address {
            options.address = a;
        }
        options.multicast_interface = interface;
        if let Some(t) = self.ttl {
            options.multicast_ttl = t;
        }
        if self.no_loopback {
            options.multicast_loopback = false;
        }
        if let Some(m) = self.max_payload_size {
            options.max_payload_size = m;
        }
        if let Some(ms) = self.message_ttl_ms {
            options.message_ttl = Duration::from_millis(ms);
        }
        options.encrypt = self.key.map(|key| EncryptOptions { key, legacy: self.legacy });
        if let Some(urls) = self.nats {
            let mut nats = NatsOptions::new(urls.split(',').map(str::trim).filter(|u| !u.is_empty()));
            nats.subject = self.subject;
            nats.group = self.nats_group;
            options.transport = Transport::Nats(nats);
        }
        options.name = self.node_name.or(name.map(str::to_owned));
        if let Some(meta) = &self.meta {
            options.meta = eventcast::meta_from_json(meta).map_err(|e| format!("--meta: {e}"))?;
        }
        if self.no_presence {
            options.presence = None;
        } else if let Some(p) = options.presence.as_mut() {
            if let Some(ms) = self.presence_interval {
                p.interval = Duration::from_millis(ms);
            }
            if let Some(ms) = self.presence_timeout {
                p.timeout = Duration::from_millis(ms);
            }
        }
        options.validate().map_err(|e| e.to_string())?;
        Ok(Common { options, stats: self.stats })
    }
}

/// A `--rate`-like value: a finite number above zero.
pub fn positive_rate(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("`{v}` is not a positive number")),
    }
}

/// One JSON argument (relaxed or canonical extended JSON) as BSON.
pub fn parse_json_arg(text: &str) -> Result<Bson, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("`{text}` is not JSON ({e}); quote strings, e.g. '\"text\"'"))?;
    Bson::try_from(value).map_err(|e| format!("`{text}` is not valid extended JSON: {e}"))
}

/// A node made from `options`, subscribed before it starts (so nothing it
/// hears is missed), then started.
pub async fn start_node(options: Options) -> Result<(Eventcast, Events), String> {
    let node = Eventcast::new(options).map_err(|e| e.to_string())?;
    let events = node.subscribe();
    node.start().await.map_err(|e| format!("start failed ({}): {e}", e.code()))?;
    Ok((node, events))
}

/// How a node reaches its group: `udp multicast, interface ADDR|any` or
/// `nats`, and `, encrypted` with a key.
pub fn via(options: &Options) -> String {
    let mut via = match &options.transport {
        Transport::Multicast => match &options.multicast_interface {
            Some(interface) => format!("udp multicast, interface {interface}"),
            None => "udp multicast, interface any".to_string(),
        },
        Transport::Nats(_) => "nats".to_string(),
    };
    if options.encrypt.is_some() {
        via.push_str(", encrypted");
    }
    via
}

/// Where a started node listens: `GROUP:PORT` or `nats subject S`, as the
/// ready lines of the commands print it.
pub fn where_listening(node: &Eventcast) -> String {
    let o = node.options();
    match &o.transport {
        Transport::Multicast => {
            let port = node.local_addr().map(|a| a.port()).unwrap_or(o.port);
            group_port(o.multicast_membership, port).to_string()
        }
        Transport::Nats(nats) => format!("nats subject {}", nats.subject_for(o.port)),
    }
}

/// ` interface IF` for a started multicast node's startup line (IF: the
/// interface joined, its index and the source address of our datagrams).
pub fn interface_note(node: &Eventcast) -> String {
    node.interface().map(|i| format!(" interface {i}")).unwrap_or_default()
}

/// Writes `text` to stdout and flushes it. `Ok(false)` when the reader is
/// gone (`eventcast peers --json | head -1`): the command then ends as if
/// done, not with an error.
pub fn print_out(text: &str) -> Result<bool, String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("stdout: {e}")),
    }
}

/// Counters as one JSON object, snake_case keys (every field of `Stats` is a `u64`).
pub fn stats_json(stats: &Stats) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        stats.fields().iter().map(|&(name, _, v)| (name.to_owned(), v.into())).collect();
    serde_json::Value::Object(map).to_string()
}

/// Prints an error or a gap on stderr; events and drains are the caller's business.
pub fn print_notice(n: Notification) {
    match n {
        Notification::Error { code, message } => eprintln!("error {code}: {message}"),
        Notification::Gap { sender, count } => {
            eprintln!("gap {{\"sender\":{},\"count\":{count}}}", serde_json::Value::String(sender))
        }
        // The CLI's emits wait on errors, not on drain; nothing to print.
        Notification::Event(_)
        | Notification::Drain
        | Notification::PeerUp(_)
        | Notification::PeerDown { .. }
        | Notification::PeerUpdate(_)
        | Notification::Request(_)
        | Notification::Reply(_) => {}
    }
}

/// Stops the node, reports what arrived while stopping, and prints the counters if asked.
pub async fn finish(node: &Eventcast, events: &mut Events, stats: bool) -> Result<(), String> {
    node.stop().await.map_err(|e| e.to_string())?;
    while let Some(n) = events.try_recv() {
        print_notice(n);
    }
    if stats {
        eprintln!("stats {}", stats_json(&node.stats()));
    }
    Ok(())
}

/// Resolves on SIGTERM (how container runtimes stop a bridge); never elsewhere.
pub async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

/// Sleeps until `deadline`, or forever without one.
pub async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_is_json() {
        let s = Stats { datagrams_sent: 3, ..Stats::default() };
        let v: serde_json::Value = serde_json::from_str(&stats_json(&s)).unwrap();
        assert_eq!(v["datagrams_sent"], 3);
        assert_eq!(v["send_errors"], 0);
    }
}
