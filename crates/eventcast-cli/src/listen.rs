//! `eventcast listen`: the group's events as JSON lines on stdout.

use crate::common::{finish, interface_note, print_notice, sleep_until_opt, start_node, where_listening, Common};
use bson::Bson;
use eventcast::{Notification, Pattern};
use std::io::Write;
use std::time::Duration;

/// `eventcast listen`, checked.
#[derive(Debug)]
pub struct Listen {
    /// Node options.
    pub common: Common,
    /// Exit after this many events.
    pub count: Option<u64>,
    /// Exit after this long.
    pub timeout: Option<Duration>,
    /// Print only the events whose names match one of these (all when empty).
    pub patterns: Vec<Pattern>,
}

impl Listen {
    /// Whether an event of this name is printed (and counted for `--count`).
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(name))
    }
}

/// The JSON line `listen` prints for an event.
pub fn event_line(event: eventcast::protocol::Event) -> String {
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

/// Prints events until the count, the timeout or Ctrl-C.
pub async fn listen(cmd: Listen) -> Result<(), String> {
    let (node, mut events) = start_node(cmd.common.options.clone()).await?;
    eprintln!("listening on {} id={}{}", where_listening(&node), node.id(), interface_note(&node));
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
                // Filtered here, not with `subscribe_pattern`: errors and gaps
                // still come on the one stream, in order with the events.
                Notification::Event(e) if !cmd.wants(&e.name) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
