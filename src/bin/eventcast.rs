//! `eventcast` — the command-line peer: listen to a group and print events as
//! JSON lines, or emit events given as JSON arguments. Run `eventcast --help`.

use bson::Bson;
use eventcast::{EncryptOptions, Eventcast, Events, Notification, Options, Stats};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
eventcast — a network EventEmitter over UDP multicast (wire-compatible with eventcast 0.1.x)

USAGE:
    eventcast listen --port PORT [OPTIONS] [--count N] [--timeout-ms T]
    eventcast emit   --port PORT [OPTIONS] [--repeat N] [--rate R] [--linger-ms L] NAME [JSON_ARG ...]

listen  prints one JSON line per received event on stdout:
          {\"name\":...,\"args\":[...],\"sender\":{\"id\":...,\"host\":...,\"port\":...,\"hostname\":...}}
        arguments are relaxed extended JSON ({\"$date\":...}, {\"$binary\":...}, {\"$regularExpression\":...}).
        When ready it prints `listening on GROUP:PORT id=ID` on stderr. Errors and gaps go to stderr
        as `error CODE: message` and `gap {\"sender\":...,\"count\":N}`.
        --count N        exit after N events
        --timeout-ms T   exit after T milliseconds
emit    sends NAME with each JSON_ARG parsed as (relaxed or canonical) extended JSON, e.g.
          eventcast emit --port 9000 greet '\"hi\"' 5 '{\"$date\":\"2020-01-01T00:00:00Z\"}'
        then keeps answering repair requests for the linger time and exits.
        --repeat N       send the event N times (default 1)
        --rate R         at most R events per second (default: as fast as possible)
        --linger-ms L    stay up L ms after the last send so receivers can repair losses
                         (default: the message ttl, 3000, capped at 10000)

OPTIONS:
    --port PORT                 UDP port of the group (required)
    --group ADDR                multicast group (default 224.0.0.1)
    --address ADDR              address to bind (default 0.0.0.0)
    --interface ADDR            interface address for joining and sending (default: any)
    --ttl N                     multicast TTL (default 1)
    --no-loopback               do not receive datagrams sent from this host
    --max-payload-size BYTES    chunk size (default 1024)
    --message-ttl-ms MS         reassembly timeout (default 3000)
    --key KEY                   encrypt with KEY (authenticated default scheme)
    --legacy                    with --key: the unauthenticated 0.1.x scheme, for 0.1.x fleets
    --stats                     print counters as a JSON line (`stats {...}`) on stderr at exit
    -h, --help                  this help
    -V, --version               version

Logging: RUST_LOG=eventcast=debug (to stderr).
";

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
enum Command {
    Listen(Listen),
    Emit(Emit),
    Help,
    Version,
}

fn usage(msg: impl std::fmt::Display) -> String {
    format!("{msg}\nRun `eventcast --help` for usage.")
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().peekable();
    let command = match it.next().map(String::as_str) {
        None => return Err(usage("missing command: listen or emit")),
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("-V" | "--version") => return Ok(Command::Version),
        Some(c @ ("listen" | "emit")) => c.to_string(),
        Some(other) => return Err(usage(format!("unknown command `{other}`"))),
    };
    let mut options = Options::default();
    let mut port: Option<u16> = None;
    let mut key: Option<String> = None;
    let mut legacy = false;
    let mut stats = false;
    let mut count = None;
    let mut timeout = None;
    let mut repeat = 1u64;
    let mut rate = None;
    let mut linger = None;
    let mut positional: Vec<String> = Vec::new();
    let mut only_positional = false;

    fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
        it.next().map(String::as_str).ok_or_else(|| usage(format!("{flag} needs a value")))
    }
    fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| usage(format!("{flag}: `{v}` is not a valid number")))
    }
    fn ip(flag: &str, v: &str) -> Result<Ipv4Addr, String> {
        v.parse().map_err(|_| usage(format!("{flag}: `{v}` is not an IPv4 address")))
    }

    while let Some(arg) = it.next() {
        if only_positional || !arg.starts_with("--") && arg != "-h" && arg != "-V" {
            positional.push(arg.clone());
            continue;
        }
        let flag = arg.as_str();
        match flag {
            "--" => only_positional = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--port" => port = Some(num(flag, value(flag, &mut it)?)?),
            "--group" => options.multicast_membership = ip(flag, value(flag, &mut it)?)?,
            "--address" => options.address = ip(flag, value(flag, &mut it)?)?,
            "--interface" => options.multicast_interface = Some(ip(flag, value(flag, &mut it)?)?),
            "--ttl" => options.multicast_ttl = num(flag, value(flag, &mut it)?)?,
            "--no-loopback" => options.multicast_loopback = false,
            "--max-payload-size" => options.max_payload_size = num(flag, value(flag, &mut it)?)?,
            "--message-ttl-ms" => options.message_ttl = Duration::from_millis(num(flag, value(flag, &mut it)?)?),
            "--key" => key = Some(value(flag, &mut it)?.to_string()),
            "--legacy" => legacy = true,
            "--stats" => stats = true,
            "--count" if command == "listen" => count = Some(num(flag, value(flag, &mut it)?)?),
            "--timeout-ms" if command == "listen" => {
                timeout = Some(Duration::from_millis(num(flag, value(flag, &mut it)?)?))
            }
            "--repeat" if command == "emit" => repeat = num(flag, value(flag, &mut it)?)?,
            "--rate" if command == "emit" => {
                let r: f64 = num(flag, value(flag, &mut it)?)?;
                if !(r > 0.0 && r.is_finite()) {
                    return Err(usage("--rate must be a positive number"));
                }
                rate = Some(r);
            }
            "--linger-ms" if command == "emit" => {
                linger = Some(Duration::from_millis(num(flag, value(flag, &mut it)?)?))
            }
            other => return Err(usage(format!("unknown option `{other}` for `{command}`"))),
        }
    }
    options.port = port.ok_or_else(|| usage("--port is required"))?;
    if legacy && key.is_none() {
        return Err(usage("--legacy needs --key"));
    }
    options.encrypt = key.map(|key| EncryptOptions { key, legacy });
    options.validate().map_err(|e| usage(e.to_string()))?;
    let common = Common { options, stats };
    if command == "listen" {
        if let Some(extra) = positional.first() {
            return Err(usage(format!("unexpected argument `{extra}`")));
        }
        return Ok(Command::Listen(Listen { common, count, timeout }));
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or_else(|| usage("emit needs an event NAME"))?;
    let args = positional
        .enumerate()
        .map(|(i, text)| parse_json_arg(&text).map_err(|e| usage(format!("argument {}: {e}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Command::Emit(Emit { common, repeat, rate, linger, name, args }))
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
    eprintln!(
        "listening on {}:{} id={}",
        o.multicast_membership,
        node.local_addr().map(|a| a.port()).unwrap_or(o.port),
        node.id()
    );
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eventcast: {e}");
            return ExitCode::from(2);
        }
    };
    // One worker runs the node's driver tasks; the main thread prints (listen)
    // or emits (emit, sending from the calling thread).
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eventcast: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::Version => {
            println!("eventcast {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Listen(l) => runtime.block_on(listen(l)),
        Command::Emit(e) => runtime.block_on(emit(e)),
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

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_emit_with_extended_json() {
        let Command::Emit(e) = parse_args(&args(&[
            "emit",
            "--port",
            "9000",
            "--key",
            "k",
            "--legacy",
            "ev",
            "\"a\"",
            "5",
            "{\"$date\":\"2020-01-01T00:00:00Z\"}",
        ]))
        .unwrap() else {
            panic!("not emit")
        };
        assert_eq!(e.common.options.port, 9000);
        assert_eq!(e.common.options.encrypt, Some(EncryptOptions { key: "k".into(), legacy: true }));
        assert_eq!(e.name, "ev");
        assert_eq!(e.args[0], Bson::String("a".into()));
        assert_eq!(e.args[1], Bson::Int32(5));
        assert!(matches!(e.args[2], Bson::DateTime(_)));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse_args(&args(&["listen"])).unwrap_err().contains("--port"));
        assert!(parse_args(&args(&["emit", "--port", "1"])).unwrap_err().contains("NAME"));
        assert!(parse_args(&args(&["emit", "--port", "1", "x", "notjson"])).unwrap_err().contains("not JSON"));
        assert!(parse_args(&args(&["listen", "--port", "1", "--group", "10.0.0.1"]))
            .unwrap_err()
            .contains("multicastMembership"));
        assert!(parse_args(&args(&["listen", "--port", "1", "--repeat", "3"])).unwrap_err().contains("unknown option"));
        assert!(parse_args(&args(&["listen", "--port", "1", "--legacy"])).unwrap_err().contains("--key"));
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
            sender: eventcast::protocol::Sender {
                id: "0123456789abcdef".into(),
                host: "127.0.0.1".into(),
                port: 9,
                hostname: "h".into(),
            },
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
