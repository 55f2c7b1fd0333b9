//! `eventcast` — the command-line peer: listen to a group and print events as
//! JSON lines, or emit events given as JSON arguments. Run `eventcast --help`.

use bson::Bson;
use clap::{Args, CommandFactory, Parser, Subcommand};
use eventcast::{
    Bridge, BridgeOptions, EncryptOptions, Eventcast, Events, MulticastInterface, NatsOptions, Notification, Options,
    Stats, Transport,
};
use group_arg::{group_and_interface, group_arg, group_port, GroupArg};
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

mod group_arg;

/// Common options of every subcommand; what is not given keeps the
/// library's default ([`Options::default`], 0.1.x's).
#[derive(Debug, Args)]
struct CommonArgs {
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
}

impl CommonArgs {
    fn into_common(self) -> Result<Common, String> {
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
        options.validate().map_err(|e| e.to_string())?;
        Ok(Common { options, stats: self.stats })
    }
}

/// eventcast — a network EventEmitter over UDP multicast (wire-compatible with eventcast 0.1.x)
#[derive(Debug, Parser)]
#[command(
    name = "eventcast",
    version,
    after_help = "Logging: RUST_LOG=eventcast=debug (to stderr).\n\
                  Examples:\n  eventcast listen --port 9000 --count 10 --timeout-ms 5000\n  \
                  eventcast emit --port 9000 greet '\"hi\"' 5 '{\"$date\":\"2020-01-01T00:00:00Z\"}'"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the group's events as JSON lines on stdout
    ///
    /// One line per received event:
    /// {"name":...,"args":[...],"sender":{"id":...,"host":...,"port":...,"hostname":...}}.
    /// Arguments are relaxed extended JSON ({"$date":...}, {"$binary":...}, {"$regularExpression":...}).
    /// When ready it prints `listening on GROUP:PORT id=ID interface IF` on stderr, IF the interface
    /// joined (name, index and the source address of our datagrams)
    /// (with --nats: `listening on nats subject S id=ID`). Errors and gaps go to stderr
    /// as `error CODE: message` and `gap {"sender":...,"count":N}`.
    Listen {
        #[command(flatten)]
        common: CommonArgs,
        /// Exit after N events
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Exit after T milliseconds
        #[arg(long, value_name = "T")]
        timeout_ms: Option<u64>,
    },
    /// Send an event to the group
    ///
    /// Sends NAME with each JSON_ARG parsed as (relaxed or canonical) extended JSON,
    /// then keeps answering repair requests for the linger time and exits. When started it
    /// prints `sending to GROUP:PORT id=ID interface IF` on stderr (not with --nats).
    Emit {
        #[command(flatten)]
        common: CommonArgs,
        /// Send the event N times
        #[arg(long, value_name = "N", default_value_t = 1)]
        repeat: u64,
        /// At most R events per second [default: as fast as possible]
        #[arg(long, value_name = "R", value_parser = positive_rate)]
        rate: Option<f64>,
        /// Stay up L ms after the last send so receivers can repair losses
        /// [default: the message ttl, capped at 10000]
        #[arg(long, value_name = "L")]
        linger_ms: Option<u64>,
        /// Event name
        #[arg(value_name = "NAME")]
        name: String,
        /// Arguments, each one JSON value
        #[arg(value_name = "JSON_ARG", allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Relay datagrams both ways between a multicast group and a NATS subject
    ///
    /// Datagrams cross unchanged (encrypted ones as ciphertext: no key needed), each at most
    /// once: several bridges on one LAN and subject do not loop. Keys are bound to group and
    /// port: NATS nodes pair with an encrypted LAN on --group G when given --nats-group G
    /// (JS `nats: { group }`). Prints `bridging GROUP:PORT
    /// <-> nats subject S interface IF` on stderr when ready; runs until SIGINT/SIGTERM or --timeout-ms.
    Bridge {
        /// UDP port of the group (also names the default subject)
        #[arg(long)]
        port: u16,
        /// Multicast group, IPv4 or IPv6 (ff12::1%eth0 names the interface) [default: 224.0.0.1]
        #[arg(long, value_name = "ADDR", value_parser = group_arg)]
        group: Option<GroupArg>,
        /// Interface to join and send on: a name, an address of it, or an index [default: any]
        #[arg(long, value_name = "IF")]
        interface: Option<MulticastInterface>,
        /// Multicast TTL (IPv6: hop limit) [default: 1]
        #[arg(long, value_name = "N")]
        ttl: Option<u32>,
        /// NATS server URLs, comma-separated
        #[arg(long, value_name = "URL")]
        nats: String,
        /// The subject [default: eventcast.<port>]
        #[arg(long, value_name = "S")]
        subject: Option<String>,
        /// Exit after T milliseconds
        #[arg(long, value_name = "T")]
        timeout_ms: Option<u64>,
        /// Print the bridge's counters as a JSON line (`stats {...}`) on stderr at exit
        #[arg(long)]
        stats: bool,
    },
}

fn positive_rate(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("`{v}` is not a positive number")),
    }
}

#[derive(Debug)]
struct Common {
    options: Options,
    stats: bool,
}

#[derive(Debug)]
struct Listen {
    common: Common,
    count: Option<u64>,
    timeout: Option<Duration>,
}

#[derive(Debug)]
struct Emit {
    common: Common,
    repeat: u64,
    rate: Option<f64>,
    linger: Option<Duration>,
    name: String,
    args: Vec<Bson>,
}

#[derive(Debug)]
struct BridgeCmd {
    options: BridgeOptions,
    timeout: Option<Duration>,
    stats: bool,
}

#[derive(Debug)]
enum Command {
    Listen(Listen),
    Emit(Emit),
    Bridge(BridgeCmd),
}

/// Checks what clap cannot (option values against the library's bounds, JSON
/// arguments) and builds the command.
fn command(cli: Cli) -> Result<Command, String> {
    Ok(match cli.command {
        Cmd::Listen { common, count, timeout_ms } => Command::Listen(Listen {
            common: common.into_common()?,
            count,
            timeout: timeout_ms.map(Duration::from_millis),
        }),
        Cmd::Emit { common, repeat, rate, linger_ms, name, args } => {
            let args = args
                .iter()
                .enumerate()
                .map(|(i, text)| parse_json_arg(text).map_err(|e| format!("argument {}: {e}", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            Command::Emit(Emit {
                common: common.into_common()?,
                repeat,
                rate,
                linger: linger_ms.map(Duration::from_millis),
                name,
                args,
            })
        }
        Cmd::Bridge { port, group, interface, ttl, nats, subject, timeout_ms, stats } => {
            let mut multicast = Options::with_port(port);
            let (group, interface) = group_and_interface(group, interface)?;
            multicast.multicast_membership = group.unwrap_or(multicast.multicast_membership);
            multicast.multicast_interface = interface;
            multicast.multicast_ttl = ttl.unwrap_or(multicast.multicast_ttl);
            let mut nats = NatsOptions::new(nats.split(',').map(str::trim).filter(|u| !u.is_empty()));
            nats.subject = subject;
            Command::Bridge(BridgeCmd {
                options: BridgeOptions { multicast, nats },
                timeout: timeout_ms.map(Duration::from_millis),
                stats,
            })
        }
    })
}

/// Relays until SIGINT, SIGTERM or the timeout, then prints the counters if asked.
async fn bridge(cmd: BridgeCmd) -> Result<(), String> {
    let group = cmd.options.multicast.multicast_membership;
    let port = cmd.options.multicast.port;
    let bridge = Bridge::start(cmd.options).await.map_err(|e| format!("start failed ({}): {e}", e.code()))?;
    eprintln!(
        "bridging {} <-> nats subject {} interface {}",
        group_port(group, port),
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

/// One JSON argument (relaxed or canonical extended JSON) as BSON.
fn parse_json_arg(text: &str) -> Result<Bson, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("`{text}` is not JSON ({e}); quote strings, e.g. '\"text\"'"))?;
    Bson::try_from(value).map_err(|e| format!("`{text}` is not valid extended JSON: {e}"))
}

/// The JSON line `listen` prints for an event.
fn event_line(event: eventcast::protocol::Event) -> String {
    let args = serde_json::Value::Array(event.args.into_iter().map(Bson::into_relaxed_extjson).collect());
    let s = &event.sender;
    format!(
        "{{\"name\":{},\"args\":{},\"sender\":{{\"id\":{},\"host\":{},\"port\":{},\"hostname\":{}}}}}",
        serde_json::Value::String(event.name),
        args,
        serde_json::Value::String(s.id.clone()),
        serde_json::Value::String(s.host.clone()),
        s.port,
        serde_json::Value::String(s.hostname.clone()),
    )
}

/// Counters as one JSON object, snake_case keys (every field of `Stats` is a `u64`).
fn stats_json(stats: &Stats) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        stats.fields().iter().map(|&(name, _, v)| (name.to_owned(), v.into())).collect();
    serde_json::Value::Object(map).to_string()
}

fn print_notice(n: Notification) {
    match n {
        Notification::Error { code, message } => eprintln!("error {code}: {message}"),
        Notification::Gap { sender, count } => {
            eprintln!("gap {{\"sender\":{},\"count\":{count}}}", serde_json::Value::String(sender))
        }
        // The CLI's emits wait on errors, not on drain; nothing to print.
        Notification::Event(_) | Notification::Drain => {}
    }
}

async fn listen(cmd: Listen) -> Result<(), String> {
    let node = Eventcast::new(cmd.common.options.clone()).map_err(|e| e.to_string())?;
    let mut events = node.subscribe();
    node.start().await.map_err(|e| format!("start failed ({}): {e}", e.code()))?;
    let o = node.options();
    match &o.transport {
        Transport::Multicast => eprintln!(
            "listening on {} id={}{}",
            group_port(o.multicast_membership, node.local_addr().map(|a| a.port()).unwrap_or(o.port)),
            node.id(),
            interface_note(&node)
        ),
        Transport::Nats(nats) => eprintln!("listening on nats subject {} id={}", nats.subject_for(o.port), node.id()),
    }
    let deadline = cmd.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut seen = 0u64;
    let mut buf = Vec::with_capacity(1024);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    'outer: while cmd.count.is_none_or(|c| seen < c) {
        let limit = cmd.count.map(|c| (c - seen).min(1024) as usize).unwrap_or(1024);
        let got = tokio::select! {
            n = events.recv_many(&mut buf, limit) => n,
            _ = sleep_until_opt(deadline) => break,
            _ = &mut ctrl_c => break,
        };
        if got == 0 {
            break;
        }
        for n in buf.drain(..) {
            match n {
                Notification::Event(e) => {
                    writeln!(out, "{}", event_line(e)).map_err(|e| format!("stdout: {e}"))?;
                    seen += 1;
                    if cmd.count == Some(seen) {
                        break 'outer;
                    }
                }
                other => print_notice(other),
            }
        }
        out.flush().map_err(|e| format!("stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    finish(&node, &mut events, cmd.common.stats).await
}

/// ` interface IF` of a started multicast node's startup line.
fn interface_note(node: &Eventcast) -> String {
    node.interface().map(|i| format!(" interface {i}")).unwrap_or_default()
}

/// Stops the node, reports what arrived while stopping, and prints the counters if asked.
async fn finish(node: &Eventcast, events: &mut Events, stats: bool) -> Result<(), String> {
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
async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
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

async fn emit(cmd: Emit) -> Result<(), String> {
    let node = Eventcast::new(cmd.common.options.clone()).map_err(|e| e.to_string())?;
    let mut events = node.subscribe();
    node.start().await.map_err(|e| format!("start failed ({}): {e}", e.code()))?;
    let o = node.options();
    if let Transport::Multicast = o.transport {
        let port = node.local_addr().map(|a| a.port()).unwrap_or(o.port);
        eprintln!("sending to {} id={}{}", group_port(o.multicast_membership, port), node.id(), interface_note(&node));
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

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // clap prints --help/--version and usage errors itself (exit 0 / 2).
    let command = match command(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            let _ = Cli::command().error(clap::error::ErrorKind::ValueValidation, e).print();
            return ExitCode::from(2);
        }
    };
    // One worker runs the node's driver tasks; the main thread prints (listen)
    // or emits (emit, sending from the calling thread). The same builder as
    // the addon's: the worker asks for a short scheduler slice.
    let runtime = match eventcast::driver_runtime_builder().worker_threads(1).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eventcast: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Listen(l) => runtime.block_on(listen(l)),
        Command::Emit(e) => runtime.block_on(emit(e)),
        Command::Bridge(b) => runtime.block_on(bridge(b)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eventcast: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn parse_args(s: &[&str]) -> Result<Command, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("eventcast").chain(s.iter().copied())).map_err(|e| e.to_string())?;
        command(cli)
    }

    #[test]
    fn parses_emit_with_extended_json() {
        let Command::Emit(e) = parse_args(&[
            "emit",
            "--port",
            "9000",
            "--key",
            "k",
            "--legacy",
            "ev",
            "\"a\"",
            "5",
            "-7",
            "{\"$date\":\"2020-01-01T00:00:00Z\"}",
        ])
        .unwrap() else {
            panic!("not emit")
        };
        assert_eq!(e.common.options.port, 9000);
        assert_eq!(e.common.options.encrypt, Some(EncryptOptions { key: "k".into(), legacy: true }));
        assert_eq!(e.name, "ev");
        assert_eq!(e.args[0], Bson::String("a".into()));
        assert_eq!(e.args[1], Bson::Int32(5));
        assert_eq!(e.args[2], Bson::Int32(-7));
        assert!(matches!(e.args[3], Bson::DateTime(_)));
    }

    #[test]
    fn unset_options_keep_the_library_defaults() {
        let Command::Listen(l) = parse_args(&["listen", "--port", "9000", "--ttl", "4"]).unwrap() else {
            panic!("not listen")
        };
        assert_eq!(l.common.options, Options { port: 9000, multicast_ttl: 4, ..Options::default() });
    }

    #[test]
    fn nats_group_binds_the_key_only_with_nats_and_must_be_multicast() {
        let Command::Listen(l) =
            parse_args(&["listen", "--port", "9000", "--nats", "nats://h:4222", "--nats-group", "239.1.2.3"]).unwrap()
        else {
            panic!("not listen")
        };
        let Transport::Nats(n) = &l.common.options.transport else { panic!("not nats") };
        assert_eq!(n.group, Some("239.1.2.3".parse().unwrap()));
        assert_eq!(l.common.options.key_group(), "239.1.2.3:9000".parse().unwrap());
        assert!(parse_args(&["listen", "--port", "1", "--nats", "nats://h", "--nats-group", "10.0.0.1"])
            .unwrap_err()
            .contains("nats.group"));
        assert!(parse_args(&["listen", "--port", "1", "--nats-group", "239.1.2.3"]).unwrap_err().contains("--nats"));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse_args(&["listen"]).unwrap_err().contains("--port"));
        assert!(parse_args(&["emit", "--port", "1"]).unwrap_err().contains("NAME"));
        assert!(parse_args(&["emit", "--port", "1", "x", "notjson"]).unwrap_err().contains("not JSON"));
        assert!(parse_args(&["listen", "--port", "1", "--group", "10.0.0.1"])
            .unwrap_err()
            .contains("multicastMembership"));
        assert!(parse_args(&["listen", "--port", "1", "--repeat", "3"]).unwrap_err().contains("--repeat"));
        assert!(parse_args(&["listen", "--port", "1", "--legacy"]).unwrap_err().contains("--key"));
        assert!(parse_args(&["emit", "--port", "1", "--rate", "0", "x"]).unwrap_err().contains("positive"));
        assert!(parse_args(&["bogus"]).is_err());
    }

    #[test]
    fn event_line_is_relaxed_extended_json() {
        let event = eventcast::protocol::Event {
            name: "x".into(),
            args: vec![
                Bson::DateTime(bson::DateTime::from_millis(0)),
                Bson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] }),
                Bson::Int64(5),
            ],
            sender: std::sync::Arc::new(eventcast::protocol::Sender {
                id: "0123456789abcdef".into(),
                host: "127.0.0.1".into(),
                port: 9,
                hostname: "h".into(),
            }),
        };
        let v: serde_json::Value = serde_json::from_str(&event_line(event)).unwrap();
        assert_eq!(v["name"], "x");
        assert_eq!(v["args"][0]["$date"], "1970-01-01T00:00:00Z");
        assert_eq!(v["args"][1]["$binary"]["base64"], "AQI=");
        assert_eq!(v["args"][2], 5);
        assert_eq!(v["sender"]["port"], 9);
        assert_eq!(v["sender"]["id"], "0123456789abcdef");
    }

    #[test]
    fn stats_json_is_json() {
        let s = Stats { datagrams_sent: 3, ..Stats::default() };
        let v: serde_json::Value = serde_json::from_str(&stats_json(&s)).unwrap();
        assert_eq!(v["datagrams_sent"], 3);
        assert_eq!(v["send_errors"], 0);
    }
}
