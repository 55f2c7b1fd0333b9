//! `eventcast` — the command-line peer: listen to a group and print events as
//! JSON lines, or emit events given as JSON arguments. Run `eventcast --help`.

mod bridge;
mod common;
mod emit;
mod group_arg;
mod listen;
mod peers;
mod request;
mod text;
mod top;

use bridge::{bridge, BridgeCmd};
use clap::{CommandFactory, Parser, Subcommand};
use common::{parse_json_arg, positive_rate, CommonArgs};
use emit::{emit, Emit};
use eventcast::MulticastInterface;
use eventcast::{BridgeOptions, NatsOptions, Options, Pattern};
use group_arg::{group_and_interface, group_arg, GroupArg};
use listen::{listen, Listen};
use peers::{peers, Peers};
use request::{request, Request};
use std::process::ExitCode;
use std::time::Duration;
use top::{top, Top};

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
    /// When ready it prints `listening on GROUP:PORT id=ID` on stderr
    /// (with --nats: `listening on nats subject S id=ID`). Errors and gaps go to stderr
    /// as `error CODE: message` and `gap {"sender":...,"count":N}`.
    /// With --pattern, only the events whose names match one of the patterns are
    /// printed (and counted by --count).
    Listen {
        #[command(flatten)]
        common: CommonArgs,
        /// Print only events whose names match P: NATS wildcards on `.`-separated
        /// names, `*` one token, `>` one or more trailing tokens (`orders.*.created`,
        /// `metrics.>`); repeat for several (an event matching any is printed)
        #[arg(long = "pattern", value_name = "P", value_parser = pattern_arg)]
        patterns: Vec<Pattern>,
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
    /// then keeps answering repair requests for the linger time and exits.
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
    /// Ask the group: send a request, print each reply as a JSON line
    ///
    /// Sends the request NAME with each JSON_ARG parsed as (relaxed or canonical) extended
    /// JSON to the nodes that handle it (`ec.handle(NAME, fn)` in JS, `Eventcast::handle` in
    /// Rust) and prints the first reply, or with --all every reply within the timeout, one
    /// JSON object per line: `{"peer": ID, "value": V}` or `{"peer": ID, "error": {"message",
    /// "code"}}`. Exits 0 when at least one reply came, 1 when none did.
    Request {
        #[command(flatten)]
        common: CommonArgs,
        /// Wait at most MS milliseconds for replies
        #[arg(long = "timeout", value_name = "MS", default_value_t = 1000)]
        timeout_ms: u64,
        /// Print every reply within the timeout, not only the first
        #[arg(long)]
        all: bool,
        /// Request name
        #[arg(value_name = "NAME")]
        name: String,
        /// Arguments, each one JSON value
        #[arg(value_name = "JSON_ARG", allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List the nodes on the group (presence), once or as they come and go
    ///
    /// Starts a node (advertised as `eventcast-peers` unless --name), listens for about one
    /// presence interval and a half, prints the peers it heard and exits: a table (id, name,
    /// host:port, hostname, pid, version, transport (with `bridged` for peers heard through a
    /// LAN<->NATS bridge, `0.1.x` for senders known from their traffic only), since, last seen,
    /// meta) or with --json one JSON object per peer and line, the JS API's shape. With
    /// --watch it prints a line per change instead (`up`, `down (goodbye|timeout|evicted)`,
    /// `update`; with --json `{"event":"peerUp"|"peerDown"|"peerUpdate","peer":{...}}` and
    /// `"reason"` for peerDown) until Ctrl-C or --timeout-ms. When ready it prints
    /// `listening on GROUP:PORT (udp multicast, interface ADDR) id=ID name=NAME` on stderr.
    Peers {
        #[command(flatten)]
        common: CommonArgs,
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        /// Keep running and print each peer that comes, goes or changes its meta
        #[arg(long)]
        watch: bool,
        /// With --watch: exit after T milliseconds
        #[arg(long, value_name = "T", requires = "watch")]
        timeout_ms: Option<u64>,
    },
    /// A live view of the group: peers and their rates, the busiest event names
    ///
    /// Peers with host, name, events/s in (delivered here) and out (what they say they
    /// sent), repairs they sent, gaps here and when they were last heard; then the busiest
    /// event names with their rates and the mean and largest size of their arguments.
    /// Rates are averages over four presence intervals (4 s by default) or two refreshes,
    /// whichever is longer; a peer's OUT/s comes from the counters in its beacons. On a terminal
    /// it redraws in place and quits on `q` or Ctrl-C; otherwise (a pipe, a file) it prints
    /// one block of plain lines per refresh, separated by an empty line.
    Top {
        #[command(flatten)]
        common: CommonArgs,
        /// Refresh every MS milliseconds (at least 100)
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        interval: u64,
        /// Exit after N refreshes
        #[arg(long, value_name = "N")]
        iterations: Option<u64>,
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

#[derive(Debug)]
enum Command {
    Listen(Listen),
    Emit(Emit),
    Request(Request),
    Bridge(BridgeCmd),
    Peers(Peers),
    Top(Top),
}

/// `--pattern`, parsed by the library's one parser (the JS `onPattern` uses it too).
fn pattern_arg(s: &str) -> Result<Pattern, String> {
    Pattern::parse(s).map_err(|e| format!("{e} ({})", e.code()))
}

/// The options of a command that shows the peers: presence on, and the
/// node's own label `name` unless --name.
fn with_presence(common: CommonArgs, name: &str, command: &str) -> Result<common::Common, String> {
    let common = common.into_common(Some(name))?;
    if common.options.presence.is_none() {
        return Err(format!("`eventcast {command}` needs presence: drop --no-presence"));
    }
    Ok(common)
}

/// Command-line arguments given as JSON values.
fn json_args(args: &[String]) -> Result<Vec<bson::Bson>, String> {
    args.iter()
        .enumerate()
        .map(|(i, text)| parse_json_arg(text).map_err(|e| format!("argument {}: {e}", i + 1)))
        .collect()
}

/// Checks what clap cannot (option values against the library's bounds, JSON
/// arguments) and builds the command.
fn command(cli: Cli) -> Result<Command, String> {
    Ok(match cli.command {
        Cmd::Listen { common, patterns, count, timeout_ms } => Command::Listen(Listen {
            common: common.into_common(None)?,
            count,
            timeout: timeout_ms.map(Duration::from_millis),
            patterns,
        }),
        Cmd::Emit { common, repeat, rate, linger_ms, name, args } => {
            let args = json_args(&args)?;
            Command::Emit(Emit {
                common: common.into_common(None)?,
                repeat,
                rate,
                linger: linger_ms.map(Duration::from_millis),
                name,
                args,
            })
        }
        Cmd::Request { common, timeout_ms, all, name, args } => {
            let timeout = Duration::from_millis(timeout_ms);
            eventcast::check_request_timeout(timeout).map_err(|e| format!("--timeout: {e}"))?;
            Command::Request(Request { common: common.into_common(None)?, name, args: json_args(&args)?, timeout, all })
        }
        Cmd::Top { common, interval, iterations } => {
            let interval = Duration::from_millis(interval);
            if interval < top::MIN_INTERVAL {
                return Err(format!("--interval must be at least {} ms", top::MIN_INTERVAL.as_millis()));
            }
            Command::Top(Top { common: with_presence(common, "eventcast-top", "top")?, interval, iterations })
        }
        Cmd::Peers { common, json, watch, timeout_ms } => Command::Peers(Peers {
            common: with_presence(common, "eventcast-peers", "peers")?,
            json,
            watch,
            timeout: timeout_ms.map(Duration::from_millis),
        }),
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
        Command::Request(r) => runtime.block_on(request(r)),
        Command::Bridge(b) => runtime.block_on(bridge(b)),
        Command::Peers(p) => runtime.block_on(peers(p)),
        Command::Top(t) => runtime.block_on(top(t)),
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
    use bson::Bson;
    use eventcast::{EncryptOptions, Transport};

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
    fn presence_options_and_the_default_names() {
        let Command::Emit(e) = parse_args(&[
            "emit",
            "--port",
            "9000",
            "--name",
            "pricing-1",
            "--meta",
            r#"{"role":"pricing","http":8080}"#,
            "--presence-interval",
            "200",
            "--presence-timeout",
            "1000",
            "greet",
        ])
        .unwrap() else {
            panic!("not emit")
        };
        assert_eq!(e.name, "greet", "--name is the node's label, NAME the event's");
        let o = &e.common.options;
        assert_eq!(o.name.as_deref(), Some("pricing-1"));
        assert_eq!(o.meta, bson::doc! {"role": "pricing", "http": 8080});
        let p = o.presence.as_ref().unwrap();
        assert_eq!((p.interval, p.timeout), (Duration::from_millis(200), Duration::from_secs(1)));

        let Command::Listen(l) = parse_args(&["listen", "--port", "9000", "--no-presence"]).unwrap() else {
            panic!("not listen")
        };
        assert_eq!(l.common.options.presence, None);
        assert_eq!(l.common.options.name, None, "the library's default name");
        let Command::Peers(p) = parse_args(&["peers", "--port", "9000", "--json"]).unwrap() else {
            panic!("not peers")
        };
        assert_eq!(p.common.options.name.as_deref(), Some("eventcast-peers"));
        assert!(p.json && !p.watch);
        let Command::Top(t) = parse_args(&["top", "--port", "9000", "--name", "mine"]).unwrap() else {
            panic!("not top")
        };
        assert_eq!(t.common.options.name.as_deref(), Some("mine"));
        let Command::Top(t) = parse_args(&["top", "--port", "9000"]).unwrap() else { panic!("not top") };
        assert_eq!(t.common.options.name.as_deref(), Some("eventcast-top"));
        assert_eq!(t.interval, Duration::from_secs(1));
    }

    #[test]
    fn bad_presence_usage_is_refused() {
        assert!(parse_args(&["peers", "--port", "1", "--no-presence"]).unwrap_err().contains("needs presence"));
        assert!(parse_args(&["top", "--port", "1", "--no-presence"]).unwrap_err().contains("needs presence"));
        assert!(parse_args(&["listen", "--port", "1", "--no-presence", "--meta", "{}"])
            .unwrap_err()
            .contains("--meta"));
        assert!(parse_args(&["listen", "--port", "1", "--meta", "[1]"]).unwrap_err().contains("--meta"));
        assert!(parse_args(&["listen", "--port", "1", "--meta", "{"]).unwrap_err().contains("not JSON"));
        let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(2000));
        assert!(parse_args(&["listen", "--port", "1", "--meta", &big]).unwrap_err().contains("meta"));
        assert!(parse_args(&["listen", "--port", "1", "--presence-interval", "1000", "--presence-timeout", "1500"])
            .unwrap_err()
            .contains("presence.timeout"));
        assert!(parse_args(&["listen", "--port", "1", "--name", &"n".repeat(300)]).unwrap_err().contains("name"));
        assert!(parse_args(&["top", "--port", "1", "--interval", "10"]).unwrap_err().contains("at least 100"));
        assert!(parse_args(&["peers", "--port", "1", "--timeout-ms", "10"]).unwrap_err().contains("--watch"));
    }

    #[test]
    fn listen_patterns_repeat_and_select_names() {
        let Command::Listen(l) = parse_args(&["listen", "--port", "9000"]).unwrap() else { panic!("not listen") };
        assert!(l.patterns.is_empty());
        assert!(l.wants("anything") && l.wants(""), "no pattern: every event");
        let Command::Listen(l) =
            parse_args(&["listen", "--port", "9000", "--pattern", "orders.*.created", "--pattern", "audit.>"]).unwrap()
        else {
            panic!("not listen")
        };
        assert_eq!(l.patterns.iter().map(Pattern::as_str).collect::<Vec<_>>(), ["orders.*.created", "audit.>"]);
        assert!(l.wants("orders.eu.created") && l.wants("audit.login.failed"));
        assert!(!l.wants("orders.eu.paid") && !l.wants("audit") && !l.wants("metrics.cpu"));
        for bad in ["", "a.>.b", "a*", "a..b"] {
            let err = parse_args(&["listen", "--port", "9000", "--pattern", bad]).unwrap_err();
            assert!(err.contains("EPATTERN") && err.contains("invalid pattern"), "{bad:?}: {err}");
        }
        assert!(parse_args(&["emit", "--port", "1", "--pattern", "a.*", "x"]).unwrap_err().contains("--pattern"));
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
}
