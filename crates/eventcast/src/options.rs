//! Node options, named and defaulted like the JS API (`eventcast` 0.1.x).

use super::group::{check_group, MulticastInterface};
use super::presence::{self, PresenceOptions};
use super::send::DEFAULT_SEND_QUEUE_BYTES;
use crate::error::Error;
use crate::protocol::{Config, Encryption, Limits, PeerTransport};
use crate::wire::legacy::LegacyKey;
use crate::wire::secure::SecureKey;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `encrypt: {key, legacy}`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptOptions {
    /// Shared passphrase.
    pub key: String,
    /// Speak the unauthenticated 0.1.x scheme (for mixed fleets only).
    pub legacy: bool,
}

impl std::fmt::Debug for EncryptOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptOptions").field("key", &"<redacted>").field("legacy", &self.legacy).finish()
    }
}

/// Options of a node. `Options::default()` matches 0.1.x's defaults except
/// `port`, which must be set (the JS layer picks a random one when unset).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Address to bind (default 0.0.0.0). An unspecified address of either
    /// family (`0.0.0.0`, `::`) means any address of the group's family;
    /// a specific one must be of the group's family.
    pub address: IpAddr,
    /// UDP port shared by the group (0 = the JS layer's random choice must be made before).
    pub port: u16,
    /// Multicast group (default 224.0.0.1): IPv4 (224.0.0.0/4) or IPv6
    /// (ff00::/8, e.g. `ff15::…` site-local, `ff12::…` link-local). eventcast
    /// 0.1.x nodes speak IPv4 only: a fleet with them stays on an IPv4 group.
    pub multicast_membership: IpAddr,
    /// The interface to join the group on and send through (default: any,
    /// the route decides): its name, index or an address of it (see
    /// [`MulticastInterface`]). Required for link-local IPv6 groups
    /// ([`needs_interface`](crate::needs_interface)). Resolved at start:
    /// [`Error::NoInterface`] when the host has no such interface.
    pub multicast_interface: Option<MulticastInterface>,
    /// Receive our own datagrams on this host (default true; needed for
    /// several nodes per host). IPv4 `IP_MULTICAST_LOOP`, IPv6 `IPV6_MULTICAST_LOOP`.
    pub multicast_loopback: bool,
    /// Multicast TTL, for an IPv6 group the hop limit (default 1: this link).
    pub multicast_ttl: u32,
    /// Largest datagram body before chunking (default 1024).
    pub max_payload_size: usize,
    /// Reassembly timeout and retention base (default 3000 ms).
    pub message_ttl: Duration,
    /// Repair requests per stalled message (default 3).
    pub message_retransmit_attempts: u32,
    /// Encryption, if any.
    pub encrypt: Option<EncryptOptions>,
    /// Memory bounds of the protocol engine.
    pub limits: Limits,
    /// Bound of the send queue in bytes (default [`DEFAULT_SEND_QUEUE_BYTES`],
    /// 8 MiB): while this much waits for a slow link, `emit` fails with
    /// [`Error::Backpressure`] until [`crate::Notification::Drain`].
    pub send_queue_bytes: usize,
    /// How datagrams reach the group: multicast UDP (default) or a NATS subject.
    pub transport: Transport,
    /// The label this node advertises to its peers (default: the program's
    /// name, see [`crate::presence::default_name`]); at most 256 bytes.
    pub name: Option<String>,
    /// The application object this node advertises (service role, version,
    /// HTTP port, ...); at most 1 KiB encoded. See [`crate::Eventcast::set_meta`].
    pub meta: bson::Document,
    /// Beacons and the peer table (default on; `None` turns presence off).
    pub presence: Option<PresenceOptions>,
}

/// The network that carries the group's datagrams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// Built once per node and never moved on a hot path: boxing would only make it clumsier to write.
#[allow(clippy::large_enum_variant)]
pub enum Transport {
    /// UDP multicast on the local network (the 0.1.x transport).
    #[default]
    Multicast,
    /// Payloads of messages on one NATS subject (see [`NatsOptions`]).
    Nats(NatsOptions),
}

/// Default chunk size over NATS: 60 KiB. TCP carries large messages cheaply,
/// so chunks far above UDP's 1 KiB cut per-datagram overhead (60× fewer
/// datagrams for a 1 MiB event); it stays under [`MAX_PAYLOAD_SIZE_LIMIT`] so
/// a bridge can multicast every datagram unchanged, and far under the
/// server's default `max_payload` (1 MiB).
pub const NATS_CHUNK_SIZE: usize = 60 * 1024;

/// `transport: 'nats://...'` and `nats: {...}`: where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsOptions {
    /// Server URLs (`nats://host:port`, `tls://host:port` or `host:port`); the
    /// client picks one and fails over to the others.
    pub servers: Vec<String>,
    /// Authentication token.
    pub token: Option<String>,
    /// User name (with `pass`).
    pub user: Option<String>,
    /// Password (with `user`).
    pub pass: Option<String>,
    /// A `.creds` file (JWT + NKey seed).
    pub creds_file: Option<String>,
    /// TLS files; any of them set requires TLS.
    pub tls: NatsTls,
    /// Connection name shown by the server (default `eventcast <id>`).
    pub name: Option<String>,
    /// The group's subject (default `eventcast.<port>`).
    pub subject: Option<String>,
    /// Largest datagram body before chunking (default [`NATS_CHUNK_SIZE`]);
    /// lowered at start to fit the server's `max_payload`.
    pub chunk_size: usize,
    /// The multicast group of the LAN this node pairs with through a bridge
    /// (default: [`Options`]' default group, `224.0.0.1`; IPv4 or IPv6).
    /// Used only to bind the `encrypt` key (the key is bound to `group:port`,
    /// see `SecureKey::for_group`), so that an encrypted LAN on another group
    /// can be bridged; it does not change the subject.
    pub group: Option<IpAddr>,
}

/// TLS files of a NATS connection (PEM paths).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatsTls {
    /// CA certificate(s) to trust for the server.
    pub ca: Option<String>,
    /// Client certificate (with `key`).
    pub cert: Option<String>,
    /// Client private key (with `cert`).
    pub key: Option<String>,
}

impl NatsOptions {
    /// Settings for `servers` with everything else defaulted.
    pub fn new(servers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        NatsOptions {
            servers: servers.into_iter().map(Into::into).collect(),
            token: None,
            user: None,
            pass: None,
            creds_file: None,
            tls: NatsTls::default(),
            name: None,
            subject: None,
            chunk_size: NATS_CHUNK_SIZE,
            group: None,
        }
    }

    /// The subject for a group on `port`: the configured one, else `eventcast.<port>`.
    pub fn subject_for(&self, port: u16) -> String {
        self.subject.clone().unwrap_or_else(|| format!("eventcast.{port}"))
    }
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("NatsOptions")
            .field("servers", &self.servers)
            .field("token", &redact(&self.token))
            .field("user", &self.user)
            .field("pass", &redact(&self.pass))
            .field("creds_file", &self.creds_file)
            .field("tls", &self.tls)
            .field("name", &self.name)
            .field("subject", &self.subject)
            .field("chunk_size", &self.chunk_size)
            .field("group", &self.group)
            .finish()
    }
}

/// Whether `url` is a server address the NATS client accepts: an optional
/// `nats://`, `tls://`, `ws://` or `wss://` scheme, optional `user:pass@`, a
/// host and an optional port.
fn valid_server_url(url: &str) -> Result<(), String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if ["nats", "tls", "ws", "wss"].contains(&scheme) => rest,
        Some((scheme, _)) => return Err(format!("{url:?}: unknown scheme {scheme:?} (nats://, tls://)")),
        None => url,
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h).trim_end_matches('/');
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("{url:?}: no host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{url:?}: bad port {p:?}"));
        }
    }
    Ok(())
}

/// Whether `subject` is a literal NATS subject: dot-separated non-empty
/// tokens without whitespace or wildcards (`*`, `>`).
fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.len() <= 255
        && subject.split('.').all(|t| !t.is_empty() && !t.contains(['*', '>']) && !t.chars().any(char::is_whitespace))
}

/// Whole milliseconds, rounded up: the JS API takes integers, the Rust API any Duration.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Checks `name`, `meta` and `presence` (part of [`Options::validate`]).
fn validate_presence(options: &Options) -> Result<(), Error> {
    if let Some(name) = &options.name {
        crate::protocol::Endpoint::check_advertised_name(name)?;
    }
    crate::protocol::Endpoint::check_advertised_meta(&options.meta)?;
    if let Some(p) = &options.presence {
        PRESENCE_INTERVAL_MS_BOUND.check(millis(p.interval))?;
        PRESENCE_TIMEOUT_MS_BOUND.check(millis(p.timeout))?;
        PRESENCE_MAX_PEERS_BOUND.check(p.max_peers as u64)?;
        if p.timeout < 2 * p.interval {
            return Err(Error::InvalidOption {
                option: "presence.timeout",
                reason: format!(
                    "{} ms is less than twice the interval ({} ms): one lost beacon would take a peer down",
                    millis(p.timeout),
                    millis(p.interval)
                ),
            });
        }
    }
    Ok(())
}

impl Default for Options {
    fn default() -> Self {
        Options {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            multicast_membership: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 1)),
            multicast_interface: None,
            multicast_loopback: true,
            multicast_ttl: 1,
            max_payload_size: 1024,
            message_ttl: Duration::from_millis(3000),
            message_retransmit_attempts: 3,
            encrypt: None,
            limits: Limits::default(),
            send_queue_bytes: DEFAULT_SEND_QUEUE_BYTES,
            transport: Transport::Multicast,
            name: None,
            meta: bson::Document::new(),
            presence: Some(PresenceOptions::default()),
        }
    }
}

/// Smallest and largest `send_queue_bytes` accepted (64 KiB – 1 GiB).
pub const SEND_QUEUE_BYTES_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1024 * 1024 * 1024;

/// Largest `max_payload_size` accepted: a chunk plus its meta must fit one IPv4 UDP datagram (65,507 bytes).
pub const MAX_PAYLOAD_SIZE_LIMIT: usize = 65_000;

/// The inclusive range a numeric option must fall in.
///
/// [`OPTION_BOUNDS`] is the one table of them: [`Options::validate`] checks
/// it, and the Node binding hands it to `lib/options.js` (`optionBounds()`),
/// which checks the same numbers with its own messages. Written once, so the
/// JS API and the Rust API (and the CLI) cannot disagree on what is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionBound {
    /// The option's name as the JS API spells it.
    pub option: &'static str,
    /// Smallest value accepted.
    pub min: u64,
    /// Largest value accepted.
    pub max: u64,
}

impl OptionBound {
    /// Whether `value` is accepted.
    pub fn contains(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    pub(crate) fn check(&self, value: u64) -> Result<(), Error> {
        if self.contains(value) {
            return Ok(());
        }
        Err(Error::InvalidOption {
            option: self.option,
            reason: format!("{value} is outside {}–{}", self.min, self.max),
        })
    }
}

/// `multicastTtl`: an IP TTL is one byte.
pub const MULTICAST_TTL_BOUND: OptionBound = OptionBound { option: "multicastTtl", min: 0, max: 255 };
/// `maxPayloadSize`: at least one byte per chunk, at most [`MAX_PAYLOAD_SIZE_LIMIT`].
pub const MAX_PAYLOAD_SIZE_BOUND: OptionBound =
    OptionBound { option: "maxPayloadSize", min: 1, max: MAX_PAYLOAD_SIZE_LIMIT as u64 };
/// `messageTtl` in milliseconds: 1 ms to one day (sent data is retained `3 ×` this).
pub const MESSAGE_TTL_MS_BOUND: OptionBound = OptionBound { option: "messageTtl", min: 1, max: 24 * 3600 * 1000 };
/// `messageRetransmitAttempts`: each attempt is a repair request a receiver
/// sends per stalled message; more than 1000 only prolongs a hopeless wait.
pub const RETRANSMIT_ATTEMPTS_BOUND: OptionBound =
    OptionBound { option: "messageRetransmitAttempts", min: 0, max: 1000 };
/// `sendQueueBytes`: [`SEND_QUEUE_BYTES_RANGE`].
pub const SEND_QUEUE_BYTES_BOUND: OptionBound = OptionBound {
    option: "sendQueueBytes",
    min: *SEND_QUEUE_BYTES_RANGE.start() as u64,
    max: *SEND_QUEUE_BYTES_RANGE.end() as u64,
};

/// `presence.interval` in milliseconds: from 50 ms to a minute.
pub const PRESENCE_INTERVAL_MS_BOUND: OptionBound = OptionBound { option: "presence.interval", min: 50, max: 60_000 };
/// `presence.timeout` in milliseconds: up to an hour (and at least twice the interval).
pub const PRESENCE_TIMEOUT_MS_BOUND: OptionBound = OptionBound { option: "presence.timeout", min: 100, max: 3_600_000 };
/// `presence.maxPeers`: the peer table's bound.
pub const PRESENCE_MAX_PEERS_BOUND: OptionBound = OptionBound { option: "presence.maxPeers", min: 1, max: 65_536 };

/// Every bounded numeric option shared by the JS and Rust APIs. (`port` is
/// not here: the JS API needs 1–65535, the Rust API also takes 0 for an
/// ephemeral port; the type bounds the rest.)
pub const OPTION_BOUNDS: [OptionBound; 8] = [
    MULTICAST_TTL_BOUND,
    MAX_PAYLOAD_SIZE_BOUND,
    MESSAGE_TTL_MS_BOUND,
    RETRANSMIT_ATTEMPTS_BOUND,
    SEND_QUEUE_BYTES_BOUND,
    PRESENCE_INTERVAL_MS_BOUND,
    PRESENCE_TIMEOUT_MS_BOUND,
    PRESENCE_MAX_PEERS_BOUND,
];

impl Options {
    /// Options with `port` set and everything else defaulted.
    pub fn with_port(port: u16) -> Self {
        Options { port, ..Options::default() }
    }

    /// Checks every value; the first bad one is reported as [`Error::InvalidOption`]
    /// with the option named as the JS API spells it.
    pub fn validate(&self) -> Result<(), Error> {
        fn bad(option: &'static str, reason: impl Into<String>) -> Result<(), Error> {
            Err(Error::InvalidOption { option, reason: reason.into() })
        }
        let legacy = self.encrypt.as_ref().is_some_and(|e| e.legacy);
        check_group(self.address, self.multicast_membership, self.multicast_interface.as_ref(), legacy)?;
        MULTICAST_TTL_BOUND.check(u64::from(self.multicast_ttl))?;
        MAX_PAYLOAD_SIZE_BOUND.check(self.max_payload_size as u64)?;
        // Whole milliseconds, rounded up: the JS API takes integers, the Rust API any Duration.
        MESSAGE_TTL_MS_BOUND.check(millis(self.message_ttl))?;
        RETRANSMIT_ATTEMPTS_BOUND.check(u64::from(self.message_retransmit_attempts))?;
        SEND_QUEUE_BYTES_BOUND.check(self.send_queue_bytes as u64)?;
        if let Some(encrypt) = &self.encrypt {
            if encrypt.key.is_empty() {
                return bad("encrypt", "key must not be empty");
            }
        }
        if let Transport::Nats(nats) = &self.transport {
            self.validate_nats(nats)?;
        }
        validate_presence(self)?;
        let l = &self.limits;
        for (value, name) in [
            (l.max_message_size, "max_message_size"),
            (l.max_partial_messages, "max_partial_messages"),
            (l.max_reassembly_bytes, "max_reassembly_bytes"),
            (l.max_retained_bytes, "max_retained_bytes"),
        ] {
            if value == 0 {
                return bad("limits", format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }

    /// NATS settings, and no multicast-only option changed from its default
    /// (the JS layer rejects the same combinations, see `lib/options.js`).
    fn validate_nats(&self, nats: &NatsOptions) -> Result<(), Error> {
        fn bad(option: &'static str, reason: impl Into<String>) -> Result<(), Error> {
            Err(Error::InvalidOption { option, reason: reason.into() })
        }
        let d = Options::default();
        for (changed, name) in [
            (self.address != d.address, "address"),
            (self.multicast_membership != d.multicast_membership, "multicastMembership"),
            (self.multicast_interface.is_some(), "multicastInterface"),
            (self.multicast_loopback != d.multicast_loopback, "multicastLoopback"),
            (self.multicast_ttl != d.multicast_ttl, "multicastTtl"),
            // The UDP chunk size; over NATS it is `NatsOptions::chunk_size`.
            (self.max_payload_size != d.max_payload_size, "maxPayloadSize"),
        ] {
            if changed {
                return bad(
                    "transport",
                    format!("{name} is a multicast option; it does not apply to a NATS transport"),
                );
            }
        }
        if self.port == 0 && nats.subject.is_none() {
            return bad("port", "a NATS transport needs a port (it names the subject) or a subject");
        }
        if nats.servers.is_empty() {
            return bad("transport", "no NATS server given");
        }
        for url in &nats.servers {
            if let Err(reason) = valid_server_url(url) {
                return bad("transport", reason);
            }
        }
        if let Some(subject) = &nats.subject {
            if !valid_subject(subject) {
                return bad("nats.subject", format!("{subject:?} is not a literal NATS subject (no spaces, *, >)"));
            }
        }
        if nats.user.is_some() != nats.pass.is_some() {
            return bad("nats", "user and pass go together");
        }
        if nats.tls.cert.is_some() != nats.tls.key.is_some() {
            return bad("nats.tls", "cert and key go together");
        }
        if !(1024..=MAX_PAYLOAD_SIZE_LIMIT).contains(&nats.chunk_size) {
            return bad("nats.chunkSize", format!("{} is outside 1024–{MAX_PAYLOAD_SIZE_LIMIT}", nats.chunk_size));
        }
        if let Some(group) = nats.group {
            if !group.is_multicast() {
                return bad(
                    "nats.group",
                    format!("{group} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)"),
                );
            }
        }
        Ok(())
    }

    /// The group an `encrypt` key is bound to: `multicastMembership:port`, or
    /// over NATS `nats.group:port` when set (the LAN group a bridge pairs
    /// this node with), so that datagrams sealed for one group fail the tag
    /// in every other.
    pub fn key_group(&self) -> SocketAddr {
        let group = match &self.transport {
            Transport::Nats(NatsOptions { group: Some(g), .. }) => *g,
            _ => self.multicast_membership,
        };
        SocketAddr::new(group, self.port)
    }

    /// The protocol engine configuration these options describe (derives the
    /// encryption key, which takes a while for the default scheme: call once).
    pub fn to_config(&self) -> Result<Config, Error> {
        self.validate()?;
        let encryption = match &self.encrypt {
            None => Encryption::None,
            Some(e) if e.legacy => Encryption::Legacy(LegacyKey::from_passphrase(&e.key)),
            // PBKDF2: slow on purpose, derived once here (Eventcast::new), not per
            // datagram; bound to our group so other groups' datagrams fail the tag.
            Some(e) => Encryption::Secure(SecureKey::derive(&e.key).for_group(self.key_group())),
        };
        Ok(Config {
            max_payload_size: self.max_payload_size,
            message_ttl: self.message_ttl,
            retransmit_attempts: self.message_retransmit_attempts,
            encryption,
            limits: self.limits.clone(),
            // NATS gives no source address: senders answer by requester id,
            // within 3x what its requests weigh.
            pay_for_repairs: matches!(self.transport, Transport::Nats(_)),
            lossless_transport: matches!(self.transport, Transport::Nats(_)),
            presence: presence::engine_config(
                self.name.as_deref(),
                &self.meta,
                self.presence.as_ref(),
                match self.transport {
                    Transport::Multicast => PeerTransport::Udp,
                    Transport::Nats(_) => PeerTransport::Nats,
                },
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn code(o: &Options) -> Option<&'static str> {
        match o.validate() {
            Ok(()) => None,
            Err(Error::InvalidOption { option, .. }) => Some(option),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(code(&Options::with_port(9000)), None);
    }

    #[test]
    fn bad_values_are_rejected_by_name() {
        let o = |f: &dyn Fn(&mut Options)| {
            let mut o = Options::with_port(9000);
            f(&mut o);
            code(&o)
        };
        assert_eq!(o(&|o| o.max_payload_size = 0), Some("maxPayloadSize"));
        assert_eq!(o(&|o| o.max_payload_size = 70_000), Some("maxPayloadSize"));
        assert_eq!(o(&|o| o.message_ttl = Duration::ZERO), Some("messageTtl"));
        assert_eq!(o(&|o| o.multicast_ttl = 256), Some("multicastTtl"));
        assert_eq!(o(&|o| o.multicast_membership = Ipv4Addr::new(10, 0, 0, 1).into()), Some("multicastMembership"));
        assert_eq!(
            o(&|o| o.multicast_interface = Some(Ipv4Addr::new(239, 1, 1, 1).into())),
            Some("multicastInterface")
        );
        assert_eq!(o(&|o| o.multicast_membership = "ff12::1".parse().unwrap()), Some("multicastInterface"));
        assert_eq!(o(&|o| o.multicast_membership = "ff15::1".parse().unwrap()), None);
        assert_eq!(o(&|o| o.encrypt = Some(EncryptOptions { key: String::new(), legacy: true })), Some("encrypt"));
        assert_eq!(o(&|o| o.limits.max_message_size = 0), Some("limits"));
        assert_eq!(o(&|o| o.send_queue_bytes = 1000), Some("sendQueueBytes"));
        assert_eq!(o(&|o| o.send_queue_bytes = 2 << 30), Some("sendQueueBytes"));
        assert_eq!(o(&|o| o.send_queue_bytes = 64 * 1024), None);
        assert_eq!(o(&|o| o.multicast_ttl = 255), None);
        assert_eq!(o(&|o| o.multicast_membership = Ipv4Addr::new(239, 255, 0, 1).into()), None);
        assert_eq!(o(&|o| o.message_retransmit_attempts = 1001), Some("messageRetransmitAttempts"));
        assert_eq!(o(&|o| o.message_ttl = Duration::from_millis(86_400_001)), Some("messageTtl"));
        assert_eq!(o(&|o| o.message_ttl = Duration::from_micros(1)), None, "rounds up to 1 ms");
    }

    /// Sets the option `bound` names to `value` (the test below covers every entry).
    fn set(o: &mut Options, bound: &OptionBound, value: u64) {
        match bound.option {
            "multicastTtl" => o.multicast_ttl = value as u32,
            "maxPayloadSize" => o.max_payload_size = value as usize,
            "messageTtl" => o.message_ttl = Duration::from_millis(value),
            "messageRetransmitAttempts" => o.message_retransmit_attempts = value as u32,
            "sendQueueBytes" => o.send_queue_bytes = value as usize,
            // Each presence setting alone, the others at values that let it range fully.
            "presence.interval" => {
                let ms = Duration::from_millis(value);
                o.presence =
                    Some(PresenceOptions { interval: ms, timeout: 2 * ms.max(Duration::from_millis(50)), max_peers: 1 })
            }
            "presence.timeout" => {
                let ms = Duration::from_millis(value);
                o.presence = Some(PresenceOptions { interval: Duration::from_millis(50), timeout: ms, max_peers: 1 })
            }
            "presence.maxPeers" => {
                o.presence = Some(PresenceOptions { max_peers: value as usize, ..PresenceOptions::default() })
            }
            other => panic!("no setter for bounded option {other}"),
        }
    }

    #[test]
    fn validate_enforces_exactly_the_option_bounds_table() {
        for bound in &OPTION_BOUNDS {
            for (value, ok) in [(bound.min, true), (bound.max, true), (bound.max + 1, false)]
                .into_iter()
                .chain(bound.min.checked_sub(1).map(|v| (v, false)))
            {
                let mut o = Options::with_port(9000);
                set(&mut o, bound, value);
                assert_eq!(code(&o), if ok { None } else { Some(bound.option) }, "{} = {value}", bound.option);
            }
        }
    }

    #[test]
    fn nats_settings_are_checked_and_exclude_multicast_options() {
        let o = |f: &dyn Fn(&mut Options, &mut NatsOptions)| {
            let mut o = Options::with_port(9000);
            let mut n = NatsOptions::new(["nats://127.0.0.1:4222", "tls://nats.example:4443", "localhost"]);
            f(&mut o, &mut n);
            o.transport = Transport::Nats(n);
            code(&o)
        };
        assert_eq!(o(&|_, _| {}), None);
        assert_eq!(o(&|_, n| n.servers.clear()), Some("transport"));
        assert_eq!(o(&|_, n| n.servers = vec!["http://x:1".into()]), Some("transport"));
        assert_eq!(o(&|_, n| n.servers = vec!["nats://:4222".into()]), Some("transport"));
        assert_eq!(o(&|_, n| n.servers = vec!["nats://h:notaport".into()]), Some("transport"));
        assert_eq!(o(&|_, n| n.servers = vec!["nats://u:p@h:4222".into()]), None);
        assert_eq!(o(&|o, _| o.multicast_ttl = 4), Some("transport"));
        assert_eq!(o(&|o, _| o.multicast_membership = Ipv4Addr::new(239, 1, 1, 1).into()), Some("transport"));
        assert_eq!(o(&|o, _| o.multicast_interface = Some(MulticastInterface::Name("eth0".into()))), Some("transport"));
        assert_eq!(o(&|o, _| o.multicast_loopback = false), Some("transport"));
        assert_eq!(o(&|o, _| o.max_payload_size = 8000), Some("transport"));
        assert_eq!(o(&|_, n| n.subject = Some("a.*".into())), Some("nats.subject"));
        assert_eq!(o(&|_, n| n.subject = Some("a b".into())), Some("nats.subject"));
        assert_eq!(o(&|_, n| n.subject = Some("a..b".into())), Some("nats.subject"));
        assert_eq!(o(&|_, n| n.subject = Some("team.events".into())), None);
        assert_eq!(o(&|_, n| n.user = Some("u".into())), Some("nats"));
        assert_eq!(o(&|_, n| n.tls.cert = Some("c.pem".into())), Some("nats.tls"));
        assert_eq!(o(&|_, n| n.chunk_size = 100), Some("nats.chunkSize"));
        assert_eq!(o(&|o, _| o.port = 0), Some("port"));
        assert_eq!(o(&|_, n| n.group = Some(Ipv4Addr::new(10, 0, 0, 1).into())), Some("nats.group"));
        assert_eq!(o(&|_, n| n.group = Some(Ipv4Addr::new(255, 255, 255, 255).into())), Some("nats.group"));
        assert_eq!(o(&|_, n| n.group = Some(Ipv4Addr::new(223, 255, 255, 255).into())), Some("nats.group"));
        assert_eq!(o(&|_, n| n.group = Some(Ipv4Addr::new(239, 1, 2, 3).into())), None);
        assert_eq!(o(&|_, n| n.group = Some(Ipv4Addr::new(224, 0, 0, 0).into())), None);
        assert_eq!(o(&|_, n| n.group = Some("ff15::ec:1".parse().unwrap())), None);
        assert_eq!(o(&|_, n| n.group = Some("fd00::1".parse().unwrap())), Some("nats.group"));
        let mut n = NatsOptions::new(["h"]);
        n.token = Some("secret".into());
        assert!(!format!("{n:?}").contains("secret"));
        assert_eq!(n.subject_for(9000), "eventcast.9000");
    }

    #[test]
    fn the_key_is_bound_to_nats_group_when_given_else_to_the_multicast_group() {
        let lan = Options { multicast_membership: Ipv4Addr::new(239, 1, 2, 3).into(), ..Options::with_port(9000) };
        assert_eq!(lan.key_group(), "239.1.2.3:9000".parse().unwrap());
        let mut n = NatsOptions::new(["h"]);
        let plain = Options { transport: Transport::Nats(n.clone()), ..Options::with_port(9000) };
        assert_eq!(plain.key_group(), "224.0.0.1:9000".parse().unwrap(), "default group, as before");
        n.group = Some(Ipv4Addr::new(239, 1, 2, 3).into());
        let paired = Options { transport: Transport::Nats(n.clone()), ..Options::with_port(9000) };
        assert_eq!(paired.key_group(), lan.key_group());
        assert_eq!(n.subject_for(9000), "eventcast.9000", "the group does not change the subject");
        let v6 = Options {
            multicast_membership: "ff15::ec:1".parse().unwrap(),
            multicast_interface: Some(MulticastInterface::Index(3)),
            ..Options::with_port(9000)
        };
        assert_eq!(v6.key_group(), "[ff15::ec:1]:9000".parse().unwrap(), "no scope: the key is the same on every host");
    }

    #[test]
    fn presence_options_are_checked() {
        let code = |o: &Options| match o.validate() {
            Ok(()) => None,
            Err(Error::InvalidOption { option, .. }) => Some(option),
            Err(e) => panic!("{e}"),
        };
        let with = |p: PresenceOptions| Options { presence: Some(p), ..Options::with_port(1) };
        assert_eq!(code(&Options::with_port(1)), None);
        let d = PresenceOptions::default();
        assert_eq!(
            code(&with(PresenceOptions { interval: Duration::from_millis(10), ..d.clone() })),
            Some("presence.interval")
        );
        assert_eq!(
            code(&with(PresenceOptions {
                timeout: Duration::from_millis(1500),
                interval: Duration::from_secs(1),
                ..d.clone()
            })),
            Some("presence.timeout")
        );
        assert_eq!(code(&with(PresenceOptions { max_peers: 0, ..d.clone() })), Some("presence.maxPeers"));
        assert_eq!(code(&Options { name: Some("n".repeat(300)), ..Options::with_port(1) }), Some("name"));
        let big = bson::doc! { "x": "y".repeat(2000) };
        assert_eq!(code(&Options { meta: big, ..Options::with_port(1) }), Some("meta"));
    }
}
