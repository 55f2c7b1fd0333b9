//! `eventcast top` driven as a user would: in a pseudo-terminal (a private
//! tmux server), reading the screen, and through a pipe; with two other
//! nodes emitting at known rates. Inside a private network namespace, as
//! every socket test (`node_support::skip_outside_netns`): the tmux server
//! is started from the test, so it and `top` live in that namespace too.

#[path = "../../eventcast/tests/node_support/mod.rs"]
mod node_support;

use node_support::{random_port, skip_outside_netns, skipped, Children};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_eventcast");

fn group_for(port: u16) -> String {
    format!("239.253.{}.{}", port >> 8, port & 0xff)
}

/// Two emitters on the group, for a minute: `alpha` sends `tick` at 40/s,
/// `beta` sends `tock` at 20/s.
fn emitters(port: u16) -> Children {
    let spawn = |name: &str, event: &str, rate: &str, arg: &str| {
        Command::new(BIN)
            .args(["emit", "--port", &port.to_string(), "--group", &group_for(port), "--rate", rate, "--name", name])
            .args(["--repeat", "100000", "--linger-ms", "0", "--", event, arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn emit")
    };
    Children(vec![spawn("alpha", "tick", "40", "\"hello\""), spawn("beta", "tock", "20", "{\"a\":[1,2,3]}")])
}

/// A tmux server of the test's own (its own socket: a tmux server already
/// running elsewhere, outside the namespace, is never asked to start `top`).
struct Tmux {
    dir: PathBuf,
}

impl Tmux {
    /// A session `top` of 160×40 running `command` (a shell command line).
    fn start(command: &str) -> Tmux {
        let dir = std::env::temp_dir().join(format!("eventcast-top-{}-{}", std::process::id(), random_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let tmux = Tmux { dir };
        let out = tmux.run(&["new-session", "-d", "-x", "160", "-y", "40", "-s", "top", command]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.dir.join("sock"))
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// A tmux format about the pane (`#{alternate_on}`, `#{cursor_flag}`, ...).
    fn format(&self, f: &str) -> String {
        String::from_utf8_lossy(&self.run(&["display-message", "-p", "-t", "top", f]).stdout).trim().to_string()
    }

    fn keys(&self, keys: &str) {
        assert!(self.run(&["send-keys", "-t", "top", keys]).status.success());
    }

    /// Waits up to `within` for the screen to satisfy `ok`, returning it; panics with the last screen.
    fn wait_for(&self, within: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "no {what} within {within:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tmux_installed(test: &str) -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !found {
        skipped(test, "tmux not installed");
    }
    found
}

/// The rate column of the event table's row for `event` (`None` without a row).
fn event_rate(screen: &str, event: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.split_whitespace().next() == Some(event))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The IN/s and OUT/s columns of the peer table's row for the peer named `name`.
fn peer_rates(screen: &str, name: &str) -> Option<(f64, f64)> {
    let line = screen.lines().find(|l| l.split_whitespace().nth(1) == Some(name))?;
    let t: Vec<&str> = line.split_whitespace().collect();
    // From the right: IN/s, OUT/s, REPAIRS, GAPS, SEEN (VIA may be two words).
    let n = t.len();
    Some((t.get(n.checked_sub(5)?)?.parse().ok()?, t.get(n - 4)?.parse().ok()?))
}

/// Both emitters shown as peers, each with rates in and out above zero, and both event names busy.
fn shows_both_peers_busy(screen: &str) -> bool {
    let busy = |name| peer_rates(screen, name).is_some_and(|(i, o)| i > 0.0 && o > 0.0);
    busy("alpha")
        && busy("beta")
        && event_rate(screen, "tick").is_some_and(|r| r > 0.0)
        && event_rate(screen, "tock").is_some_and(|r| r > 0.0)
}

/// The shell line the pane runs: `top`, then its exit status and the
/// terminal's modes, then a pause that keeps the pane open to be read.
fn pane_command(port: u16) -> String {
    format!(
        "'{BIN}' top --port {port} --group {} --interval 500; echo \"EXIT=$?\"; stty -a; sleep 600",
        group_for(port)
    )
}

/// Checks the pane after `top` exited: status 0, the normal screen, the
/// cursor shown, and the terminal out of raw mode (canonical input, echo).
fn assert_exited_and_restored(tmux: &Tmux) {
    // `stty -a` follows the status: wait until its modes are on the screen too.
    let screen = tmux.wait_for(Duration::from_secs(10), "exit", |s| s.contains("EXIT=") && s.contains("icanon"));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "0", "still on the alternate screen:\n{screen}");
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "the cursor is still hidden:\n{screen}");
    let modes: Vec<&str> = screen.split_whitespace().collect();
    assert!(modes.contains(&"icanon") && modes.contains(&"echo"), "still in raw mode (stty -a):\n{screen}");
    assert!(!screen.contains("eventcast top ·"), "the view was left on the normal screen:\n{screen}");
}

#[test]
fn top_in_a_terminal_shows_both_peers_busy_and_quits_on_q() {
    let test = "top_in_a_terminal_shows_both_peers_busy_and_quits_on_q";
    if !tmux_installed(test) || skip_outside_netns(test) {
        return;
    }
    let port = random_port();
    let _emitters = emitters(port);
    let tmux = Tmux::start(&pane_command(port));
    // The pane's process is in this (private) network namespace.
    let pane_pid = tmux.format("#{pane_pid}");
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(ns(&pane_pid), ns("self"), "tmux ran top outside the test's network namespace");

    let screen = tmux.wait_for(Duration::from_secs(30), "both peers busy", shows_both_peers_busy);
    assert!(screen.contains("2 peers"), "{screen}");
    assert!(screen.contains(&format!("{}:{port}", group_for(port))), "{screen}");
    assert!(screen.contains("q quits"), "{screen}");
    assert_eq!(tmux.format("#{alternate_on}"), "1", "top draws on the alternate screen");
    assert_eq!(tmux.format("#{cursor_flag}"), "0", "top hides the cursor");
    tmux.keys("q");
    assert_exited_and_restored(&tmux);
}

#[test]
fn top_in_a_terminal_quits_on_ctrl_c() {
    let test = "top_in_a_terminal_quits_on_ctrl_c";
    if !tmux_installed(test) || skip_outside_netns(test) {
        return;
    }
    let port = random_port();
    let tmux = Tmux::start(&pane_command(port));
    tmux.wait_for(Duration::from_secs(30), "the first frame", |s| s.contains("eventcast top ·"));
    tmux.keys("C-c");
    assert_exited_and_restored(&tmux);
}

#[test]
fn top_without_a_terminal_prints_plain_blocks() {
    let test = "top_without_a_terminal_prints_plain_blocks";
    if skip_outside_netns(test) {
        return;
    }
    let port = random_port();
    let _emitters = emitters(port);
    let out = Command::new(BIN)
        .args(["top", "--port", &port.to_string(), "--group", &group_for(port)])
        .args(["--interval", "1000", "--iterations", "7"])
        .output()
        .expect("run top");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "top failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains('\x1b'), "escape codes in plain output:\n{stdout}");
    let headers = stdout.lines().filter(|l| l.starts_with("eventcast top ·")).count();
    assert_eq!(headers, 7, "one block per refresh:\n{stdout}");
    assert!(!stdout.contains("q quits"), "{stdout}");
    let last = &stdout[stdout.rfind("eventcast top ·").unwrap()..];
    assert!(shows_both_peers_busy(last), "{last}");
}
