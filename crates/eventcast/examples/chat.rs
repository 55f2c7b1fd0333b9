//! A tiny chat over eventcast: every line typed on stdin is emitted as a
//! `chat` event; chat events from other nodes are printed.
//!
//! Run two of these (inside a private network namespace when testing:
//! `scripts/netns-run.sh cargo run --example chat -- 9000`), type in one, read in the other.

use bson::Bson;
use eventcast::{Eventcast, Notification, Options};
use std::io::BufRead;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map(|p| p.parse()).transpose()?.unwrap_or(9000);
    let me = std::env::var("USER").unwrap_or_else(|_| "someone".into());

    // Presence announces us by name: the others see who joins and leaves.
    let node = Eventcast::new(Options { name: Some(me.clone()), ..Options::with_port(port) })?;
    let mut events = node.subscribe();
    node.start().await?;
    eprintln!("chat on 224.0.0.1:{port} as {me} (id {}); type lines, Ctrl-D to quit", node.id());

    // Print what others say.
    let printer = tokio::spawn(async move {
        while let Some(n) = events.recv().await {
            match n {
                Notification::Event(e) if e.name == "chat" => {
                    let text = |i: usize| e.args.get(i).and_then(Bson::as_str).unwrap_or("?").to_string();
                    println!("<{}@{}> {}", text(0), e.sender.hostname, text(1));
                }
                // Typed lines never fill the send queue; nothing waits for a drain.
                Notification::Event(_) | Notification::Drain => {}
                Notification::Error { code, message } => eprintln!("error {code}: {message}"),
                Notification::Gap { sender, count } => eprintln!("lost {count} message(s) from {sender}"),
                Notification::PeerUp(p) => eprintln!("* {} joined from {}", p.name.unwrap_or(p.id), p.hostname),
                Notification::PeerDown { peer, reason } => {
                    eprintln!("* {} left ({})", peer.name.unwrap_or(peer.id), reason.as_str())
                }
                Notification::PeerUpdate(_) | Notification::Request(_) | Notification::Reply(_) => {}
            }
        }
    });

    // Emit what we type. `emit` is synchronous and callable from any thread:
    // it sends from the calling thread without going through the runtime.
    let sender = node.clone();
    tokio::task::spawn_blocking(move || -> Result<(), eventcast::Error> {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            sender.emit("chat", &[Bson::String(me.clone()), Bson::String(line)])?;
        }
        Ok(())
    })
    .await??;

    node.stop().await?;
    printer.abort();
    Ok(())
}
