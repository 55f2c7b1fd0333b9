//! `eventcast` — the command-line peer: listen to a group and print events as
//! JSON lines, or emit events given as JSON arguments. Run `eventcast --help`.

mod bridge;
mod common;
mod emit;
mod listen;
mod text;
mod top;

use bridge::{bridge, BridgeCmd};
use clap::{CommandFactory, Parser, Subcommand};
use common::{parse_json_arg, positive_rate, CommonArgs};
use emit::{emit, Emit};
use eventcast::{BridgeOptions, NatsOptions, Options};
use listen::{listen, Listen};
use std::net::Ipv4Addr;
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
    /// A live view of the group: peers and their rates, the busiest event names
    ///
    /// Peers with host, name, events/s in (delivered here) and out (what they say they
    /// sent), repairs they sent, gaps here and when they were last heard; then the busiest
    /// event names with their rates and the mean and largest size of their arguments.
    /// Rates are averages over the last 3 s (or two refreshes, if longer). On a terminal
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
    /// <-> nats subject S` on stderr when ready; runs until SIGINT/SIGTERM or --timeout-ms.
    Bridge {
        /// UDP port of the group (also names the default subject)
        #[arg(long)]
        port: u16,
        /// Multicast group [default: 224.0.0.1]
        #[arg(long, value_name = "ADDR")]
        group: Option<Ipv4Addr>,
        /// Interface address for joining and sending [default: any]
        #[arg(long, value_name = "ADDR")]
        interface: Option<Ipv4Addr>,
        /// Multicast TTL [default: 1]
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
    Bridge(BridgeCmd),
    Top(Top),
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
        Cmd::Top { common, interval, iterations } => {
            let interval = Duration::from_millis(interval);
            if interval < top::MIN_INTERVAL {
                return Err(format!("--interval must be at least {} ms", top::MIN_INTERVAL.as_millis()));
            }
            Command::Top(Top { common: common.into_common()?, interval, iterations })
        }
        Cmd::Bridge { port, group, interface, ttl, nats, subject, timeout_ms, stats } => {
            let mut multicast = Options::with_port(port);
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
        Command::Bridge(b) => runtime.block_on(bridge(b)),
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

    fn parse_args(s: &[&str]) -> Result<Command, String> {
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
        assert_eq!(n.group, Some(Ipv4Addr::new(239, 1, 2, 3)));
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
}
