//! `eventcast request`: ask the group, print each reply as a JSON line.

use crate::common::{finish, start_node, Common};
use bson::Bson;
use eventcast::Reply;
use std::time::Duration;

/// `eventcast request`, checked.
#[derive(Debug)]
pub struct Request {
    /// Node options.
    pub common: Common,
    /// Request name.
    pub name: String,
    /// Request arguments.
    pub args: Vec<Bson>,
    /// How long to wait for replies.
    pub timeout: Duration,
    /// Every reply within the timeout (gather), not only the first.
    pub all: bool,
}

/// The JSON line printed for a reply: `{"peer", "value"}` or `{"peer", "error": {"message", "code"}}`.
pub fn reply_line(reply: Reply) -> String {
    let peer = serde_json::Value::String(reply.from.id.clone());
    match reply.outcome {
        Ok(value) => serde_json::json!({ "peer": peer, "value": value.into_relaxed_extjson() }).to_string(),
        Err(f) => serde_json::json!({ "peer": peer, "error": { "message": f.message, "code": f.code } }).to_string(),
    }
}

/// Asks, prints the replies; an error (exit status 1) when none came.
pub async fn request(cmd: Request) -> Result<(), String> {
    let (node, mut events) = start_node(cmd.common.options.clone()).await?;
    let replies = if cmd.all {
        node.gather(&cmd.name, &cmd.args, cmd.timeout).await
    } else {
        node.request_reply(&cmd.name, &cmd.args, cmd.timeout).await.map(|r| vec![r]).or_else(|e| match e {
            eventcast::Error::TimedOut { .. } => Ok(Vec::new()),
            e => Err(e),
        })
    };
    let replies = replies.map_err(|e| format!("request failed ({}): {e}", e.code()))?;
    let count = replies.len();
    for reply in replies {
        crate::common::print_out(&format!("{}\n", reply_line(reply)))?;
    }
    finish(&node, &mut events, cmd.common.stats).await?;
    if count == 0 {
        return Err(format!("no reply to {:?} within {} ms", cmd.name, cmd.timeout.as_millis()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventcast::protocol::Sender;
    use eventcast::{RemoteFailure, RequestId};
    use std::sync::Arc;

    #[test]
    fn reply_lines_are_relaxed_extended_json() {
        let from = Arc::new(Sender { id: "00112233aabbccdd".into(), host: "h".into(), port: 1, hostname: "x".into() });
        let ok = Reply { rid: RequestId(1), from: from.clone(), outcome: Ok(Bson::Int64(5)) };
        assert_eq!(reply_line(ok), r#"{"peer":"00112233aabbccdd","value":5}"#);
        let err = Reply { rid: RequestId(1), from, outcome: Err(RemoteFailure::new("no", "ENOENT")) };
        assert_eq!(reply_line(err), r#"{"error":{"code":"ENOENT","message":"no"},"peer":"00112233aabbccdd"}"#);
    }
}
