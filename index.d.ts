// Type definitions for eventcast 0.2 — a network EventEmitter over UDP multicast.
/// <reference types="node" />
import { EventEmitter } from 'node:events'

declare namespace Eventcast {
  /** Bunyan level names; numbers 10 (trace) … 60 (fatal) are accepted too. */
  type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'
  type LogLevel = LogLevelName | number

  interface EncryptOptions {
    /** Shared passphrase (non-empty). */
    key: string
    /**
     * Speak eventcast 0.1.x's unauthenticated scheme (AES-128-CBC, MD5-derived
     * key and fixed IV) for mixed fleets. Default false: the authenticated scheme.
     */
    legacy?: boolean
    /** Accepted for 0.1.x configs: only `'aes128'` / `'aes-128-cbc'`. */
    algorithm?: 'aes128' | 'aes-128-cbc'
  }

  interface Options {
    /**
     * Address to bind. Default `'0.0.0.0'`: any address of the group's
     * family (`'::'` works too); a specific address must be of the group's family.
     */
    address?: string
    /** UDP port shared by the group (1–65535). Default: random in 49152–65535. */
    port?: number
    /**
     * Multicast group: IPv4 (224.0.0.0–239.255.255.255) or IPv6 (ff00::/8),
     * e.g. `'ff15::ec:1'` (site-local) or `'ff12::ec:1'` (link-local: needs
     * `multicastInterface`, or the interface as a zone, `'ff12::ec:1%eth0'`).
     * Default `'224.0.0.1'`. eventcast 0.1.x nodes speak IPv4 only.
     */
    multicastMembership?: string
    /**
     * The interface to join and send on: its name (`'eth1'`), an address of
     * it (for an IPv4 group the classic form), or its index (a number, or
     * digits). Default: any (the route decides). Required for link-local IPv6
     * groups. An interface this host lacks fails `start()` with `ENOINTERFACE`,
     * whose message lists the host's interfaces.
     */
    multicastInterface?: string | number
    /** Receive our group's datagrams on this host (needed for several nodes per host). Default true. */
    multicastLoopback?: boolean
    /** Multicast TTL, for an IPv6 group the hop limit (0–255). Default 1. */
    multicastTtl?: number
    /** Serve the TCP REPL. Default false (also enabled by giving `replPort`). */
    replEnabled?: boolean
    /** REPL port. Default: random in 49152–65535. */
    replPort?: number
    /** REPL bind host. Default `'localhost'`; anything else logs a warning. */
    replHost?: string
    /** REPL sessions at once (1–1024); further connections are refused, counted in `replStats().refused` and logged. Default 16. */
    replMaxClients?: number
    /** A REPL session without input for this many ms is closed (100–86400000). Default 600000 (10 minutes). */
    replIdleTimeout?: number
    /** Ms `request()` and `gather()` wait for replies (1–3600000). Default 1000. Per call: `ec.timeout(ms).request(...)`. */
    requestTimeout?: number
    /** Encryption: false (default) or `{key, legacy?}`. */
    encrypt?: false | EncryptOptions
    /** Largest datagram before a message is chunked (1–65000). Default 1024. */
    maxPayloadSize?: number
    /** Reassembly timeout in ms (1–86400000); retention is 3× this. Default 3000. */
    messageTtl?: number
    /** Repair requests per stalled message (0–1000). Default 3. */
    messageRetransmitAttempts?: number
    /** 0.1.x's spelling of `messageRetransmitAttempts`. */
    messageRetransmitAttemps?: number
    /** Write bunyan JSON records to stdout. Default false. */
    log?: boolean
    /** Level of the logger. Default `'error'` (50). An invalid level logs a warning. */
    logLevel?: LogLevel
    /**
     * Bound of the send queue in bytes (65536–1073741824). Default 8388608 (8 MiB).
     * While this much waits for a slow link, `emit` throws `EBACKPRESSURE`
     * until 'drain'.
     */
    sendQueueBytes?: number
    /**
     * `'multicast'` (default) or NATS server URLs, comma-separated
     * (`'nats://10.0.0.5:4222,nats://10.0.0.6:4222'`). When absent,
     * `$EVENTCAST_TRANSPORT` decides. With NATS, the multicast options
     * (`address`, `multicastMembership`, `multicastInterface`,
     * `multicastLoopback`, `multicastTtl`, `maxPayloadSize`) are an
     * `ERR_EVENTCAST_OPTIONS` error.
     */
    transport?: string
    /** NATS settings (only with a NATS transport). */
    nats?: NatsSettings
    /** Label this node advertises to its peers (at most 256 bytes). Default `process.title`. */
    name?: string
    /**
     * Application object advertised to peers (service role, version, HTTP
     * port, ...): JSON values, at most 1 KiB encoded. Default `{}`. Change it
     * with `setMeta()`.
     */
    meta?: { [key: string]: JsonValue }
    /**
     * Presence: true (default: a beacon every 1000 ms, a peer down after
     * 5000 ms of silence, 1024 peers at most), false (no beacons, `peers()` is
     * empty), or the settings.
     */
    presence?: boolean | PresenceSettings
  }

  /** `presence: {...}`. */
  interface PresenceSettings {
    /** ms between this node's beacons (50–60000; each jittered ±10%). Default 1000. */
    interval?: number
    /** ms without a beacon or event after which a peer is down (100–3600000; at least 2 × interval). Default 5000. */
    timeout?: number
    /** Peers tracked (1–65536); a new one evicts the least recently heard (`peersEvicted`). Default 1024. */
    maxPeers?: number
  }

  type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

  /** A node this node knows (`peers()`, 'peerUp', 'peerUpdate'). */
  interface Peer {
    /** Instance id, 16 lower-case hex chars. */
    id: string
    /** Its advertised address and group port (`getAddress()` there). */
    host: string
    port: number
    /** Its OS hostname. */
    hostname: string
    /** The label it advertises (`null` for a 0.1.x sender). */
    name: string | null
    /** Its process id (`null` for a 0.1.x sender). */
    pid: number | null
    /** Its eventcast version (`null` for a 0.1.x sender). */
    version: string | null
    /** Its application object (`{}` when it has none). */
    meta: { [key: string]: JsonValue }
    /** When it started (a 0.1.x sender: when first heard), ms since 1970. */
    since: number
    /** When its last beacon or event arrived here, ms since 1970. */
    lastSeen: number
    /** How the peer itself is connected. */
    transport: 'udp' | 'nats'
    /** Heard through a LAN⇄NATS bridge (its transport is not this node's). */
    bridged: boolean
    /** A 0.1.x sender, known from its events only (it sends no beacons). */
    legacy: boolean
    /** Its own counters, from its latest beacon (zeros for a 0.1.x sender). */
    stats: PeerStats
    /** Its events delivered here. */
    delivered: number
    /** Its messages lost here beyond repair. */
    gaps: number
  }

  interface PeerStats {
    eventsSent: number
    eventsDelivered: number
    datagramsSent: number
    repairsSent: number
    repairsRequested: number
    gapsUnrecovered: number
  }

  /** 'peerDown': the peer as last known, and why it is gone. */
  interface PeerDown extends Peer {
    reason: 'goodbye' | 'timeout' | 'evicted'
  }

  /** `nats: {...}`. */
  interface NatsSettings {
    /** Authentication token. */
    token?: string
    /** User name (with `pass`). */
    user?: string
    /** Password (with `user`). */
    pass?: string
    /** Path of a `.creds` file (JWT + NKey seed). */
    credsFile?: string
    /** PEM file paths; any of them requires TLS. */
    tls?: { ca?: string, cert?: string, key?: string }
    /** Connection name shown by the server. Default `eventcast <id>`. */
    name?: string
    /** The group's subject. Default `eventcast.<port>`. */
    subject?: string
    /**
     * The multicast group of the LAN this node pairs with through
     * `eventcast bridge`: the `encrypt` key is bound to `group:port`, so to
     * bridge an encrypted LAN on group G give the NATS nodes `group: G`.
     * Key binding only: the subject does not change. An IPv4 or IPv6
     * multicast address (else `ERR_EVENTCAST_OPTIONS`). Default `'224.0.0.1'`.
     */
    group?: string
  }

  /** The resolved options (`instance.config`). */
  interface Config {
    /** `'multicast'` or `'nats'`. */
    readonly transport: 'multicast' | 'nats'
    /** With a NATS transport: the servers and settings. */
    readonly nats?: Readonly<NatsSettings & { servers: string[] }>
    readonly address: string
    readonly port: number
    readonly multicastMembership: string
    /** As given; an index given as digits is a number; a group's `%zone` lands here. */
    readonly multicastInterface: string | number | undefined
    readonly multicastLoopback: boolean
    readonly multicastTtl: number
    readonly replEnabled: boolean
    readonly replPort: number | undefined
    readonly replHost: string
    readonly replMaxClients: number
    readonly replIdleTimeout: number
    readonly requestTimeout: number
    readonly encrypt: false | Readonly<{ key: string, legacy: boolean }>
    readonly maxPayloadSize: number
    readonly messageTtl: number
    readonly messageRetransmitAttempts: number
    readonly messageRetransmitAttemps: number
    readonly log: boolean
    /** Numeric bunyan level. */
    readonly logLevel: number
    readonly sendQueueBytes: number
    readonly name: string
    /** `meta` as given (a copy; `setMeta()` does not change it). */
    readonly meta: { readonly [key: string]: JsonValue }
    readonly presence: false | Readonly<Required<PresenceSettings>>
  }

  type Status = 'stopped' | 'starting' | 'started' | 'stopping'

  interface Address {
    /**
     * The address our datagrams carry (`meta.host`), of the group's family.
     * IPv4: `multicastInterface`'s address, else a specific non-loopback
     * `address`, else the first non-loopback IPv4 address of the host, else
     * 127.0.0.1. IPv6: a specific non-loopback `address`, else the source the
     * kernel picks for the group on the interface (its link-local address
     * for a link-local group), else the host's first IPv6 address, else `::1`.
     */
    host: string
    /** The group port (over NATS, the port that names the default subject). */
    port: number
  }

  interface Stats {
    datagramsSent: number
    datagramsReceived: number
    eventsDelivered: number
    eventsSent: number
    ownDatagramsIgnored: number
    duplicatesIgnored: number
    repairsRequested: number
    repairsSent: number
    repairsReceived: number
    gapsUnrecovered: number
    /** Senders that had delivered here, forgotten for room in the 1,024-sender table into a compact record (highest delivered `sn`), so they neither deliver again nor skip losses when they return. */
    sendersCompacted: number
    /** Compact records of forgotten senders dropped (oldest first) to stay within 16,384. */
    senderRecordsDropped: number
    /** Repair requests to a sender not known yet trimmed (fewer indexes) or withheld, to stay within 3× the bytes its chunks brought. */
    repairRequestsTrimmed: number
    /** Resends withheld because a requester without a source address (NATS: by its id) had used up its credit of 3× the bytes of its requests. */
    repairsCreditLimited: number
    /** Our repair requests not sent because another node asked first. */
    repairRequestsSuppressed: number
    /** Repairs not re-sent because the same datagram was just re-sent. */
    repairsSuppressed: number
    /** Repairs refused by the per-requester (source address) byte budget. */
    repairsRateLimited: number
    /** Repair requests for data we do not hold. */
    repairRequestsIgnored: number
    /** Sent messages dropped from retention before their time (limits). */
    retentionDropped: number
    heartbeatsSent: number
    /** Authenticated datagrams dropped as replays (stale, future or seen). */
    rejectedReplay: number
    rejectedMalformed: number
    rejectedVersion: number
    rejectedDecrypt: number
    rejectedLimits: number
    partialsEvicted: number
    reassemblyBytes: number
    retainedBytes: number
    notificationsDropped: number
    sendErrors: number
    /** Received events dropped because their name is reserved (`stop`, `gap`, ...) or a protocol message. */
    rejectedReserved: number
    // --- send backpressure ---
    /** Bytes waiting in the send queue now (bounded by the `sendQueueBytes` option). */
    sendQueueBytes: number
    /** Emits refused with `EBACKPRESSURE` because the send queue was full. */
    sendQueueFull: number
    /** Repair resends dropped because the send queue was full (peers ask again). */
    sendQueueRepairsDropped: number
    // (hostile identifiers).
    /** Chunk-group keys stored by reassembly (partials plus remembered completed ids); bounded. */
    reassemblyKeys: number
    // issue 10 part B: traffic out bounded by traffic in
    /** Repairs withheld: the node-wide repair budget (credited by our own emitted bytes) was spent. */
    repairsBudgetLimited: number
    /** Repair requests not sent: the node-wide request budget (credited by bytes received) was spent. */
    repairRequestsRateLimited: number
    /** Messages given up on whose sender was never heard from (no complete event, never 8 chunks of one message): counted, not reported as 'gap'. */
    gapsUnconfirmed: number
    /** 0.1.x repair requests for data this node does not hold, forwarded once to the group (shared hosts). */
    repairRequestsRelayed: number
    /** 0.1.x repair requests not answered: the same source already had its answer for that chunk group (a second 0.1.x request comes from a partial that late copies started after the message completed or was dropped there). */
    legacyRepeatRequestsIgnored: number
    // --- NATS transport ---
    /** NATS: connections established (the first, then every reconnect). */
    natsConnects: number
    /** NATS: times the connection to the server was lost (the client reconnects by itself). */
    natsDisconnects: number
    /** NATS: slow-consumer notices (messages dropped for this node; repaired or reported as gaps). */
    natsSlowConsumer: number
    /** NATS: errors the server reported (`-ERR`, e.g. a permissions violation). */
    natsServerErrors: number
    /** NATS: messages on the subject larger than any datagram (128 KiB), dropped before decoding. */
    natsOversizeDropped: number
    /** NATS: bundles published (one NATS message carrying several datagrams of a burst). */
    natsBundlesSent: number
    /** NATS: bundles received (their datagrams count in `datagramsReceived` one by one). */
    natsBundlesReceived: number
    /** NATS: bundles refused whole (a frame not framed as a datagram, or running past the bundle): none of their datagrams was used. */
    natsBundlesMalformed: number
    /** Rejected: an event with more arguments (4,096) or values (262,144) than any node sends, refused before conversion. */
    rejectedTooManyValues: number
    // --- presence ---
    /** Presence beacons sent (hello and goodbye). */
    beaconsSent: number
    /** Presence beacons received and accepted (malformed ones count in `rejectedMalformed`). */
    beaconsReceived: number
    /** Peers in the presence table now (at most `presence.maxPeers`). */
    peersKnown: number
    /** Peers forgotten for room: the table was full when another appeared ('peerDown' with reason `evicted`). */
    peersEvicted: number
    /** New peers not admitted: more than `presence.maxPeers` appeared within one `presence.timeout` (a flood of new ids); each tries again at its next beacon or event. */
    peersRefused: number
    // --- request/reply ---
    /** Requests sent (`request`, `gather`). */
    requestsSent: number
    /** Requests received from other nodes (whether or not a handler took them). */
    requestsReceived: number
    /** Requests received for a name this node has no handler for (ignored: another node may answer). */
    requestsUnhandled: number
    /** Requests refused because this node already had as many in progress as it answers at once (1,024; no reply sent). */
    requestsRefused: number
    /** Replies sent (values and errors). */
    repliesSent: number
    /** Replies received that were addressed to this node. */
    repliesReceived: number
    /** Replies addressed to other nodes (on the group: dropped unread). */
    repliesNotOurs: number
    /** Replies addressed to this node matching no request in progress (late, a second reply to `request`, or forged): dropped. */
    repliesUnmatched: number
    /** Replies a handler produced after its requester's timeout had passed: not sent. */
    repliesLate: number
  }

  interface Gap {
    /** Sender instance id. */
    sender: string
    /** Messages lost beyond repair. */
    count: number
  }

  interface ReplClient {
    address: string | undefined
    port: number | undefined
  }

  /** `replStats()`: the REPL's counters (zeros without a REPL). */
  interface ReplStats {
    /** Sessions connected now. */
    clients: number
    /** Connections refused because `replMaxClients` sessions were connected. */
    refused: number
    /** Sessions closed after `replIdleTimeout` ms without input. */
    idleClosed: number
  }

  /**
   * Errors carry a stable `code`:
   * - thrown by `emit`: `EPAYLOAD` (TypeError) — the arguments cannot be sent;
   *   `EBACKPRESSURE` (Error) — the send queue is full, nothing sent: emit
   *   again after 'drain';
   * - on 'error' / start / stop: `EPRVERSION` (a datagram of another protocol
   *   version), `EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, `ESOCKET`;
   * - on start (and thrown by `emit` if the clock is set back that far):
   *   `ECLOCK` — the system clock reads before 1970;
   * - on start: `ENOINTERFACE` — `multicastInterface` names an interface
   *   (name, index or address) this host does not have, or one without an
   *   IPv4 address for an IPv4 group; the message lists the host's interfaces;
   * - on 'error': `EREMOTE` — another node emitted 'error'; its arguments are in `args`;
   * - request/reply: `EHANDLEREXISTS` (thrown by `handle`: the name has a
   *   handler), `ETIMEDOUT` (`request` got no reply in time), `EREMOTE`
   *   (`request`'s first reply is an error: `peer`, `remoteCode`),
   *   `ENOTSTARTED` (`request`/`gather` before start()), `ETOOMANYREQUESTS`
   *   (65,536 requests await replies already);
   *   `EINTERNAL` — a driver task failed (a bug): the node stops itself;
   * - thrown by the constructor: see {@link Codes}.
   */
  interface EventcastError extends Error {
    code: string
    /** With `code: 'EREMOTE'`: the arguments the remote node passed to `emit('error', ...)`. */
    args?: unknown[]
    /** With `code: 'EREMOTE'` from `request()` (and on a gather reply's `error`): the replying node's id. */
    peer?: string
    /** With `code: 'EREMOTE'` from `request()`: the `code` the remote handler's error had (`''` when none). */
    remoteCode?: string
  }

  /** Codes of option validation errors (TypeError for a wrong type, RangeError for a value out of range). */
  interface Codes {
    /** The argument is neither a port number nor an options object. */
    readonly OPTIONS: 'ERR_EVENTCAST_OPTIONS'
    /** `port` / `replPort`. */
    readonly PORT: 'ERR_EVENTCAST_PORT'
    /** `address`, `multicastMembership`, `multicastInterface`, `replHost`. */
    readonly ADDRESS: 'ERR_EVENTCAST_ADDRESS'
    /** Booleans, sizes, TTLs, attempts. */
    readonly VALUE: 'ERR_EVENTCAST_OPTION_VALUE'
    /** `encrypt`. */
    readonly ENCRYPT: 'ERR_EVENTCAST_ENCRYPT'
  }

  /**
   * A values a network event argument may hold. Received values arrive as:
   * numbers (int64 beyond ±2^53 as `bigint`), strings, booleans, `null`
   * (also for `undefined`), arrays, plain objects, `Date`, `RegExp`, `Buffer`.
   */
  type Value =
    | string | number | bigint | boolean | null | undefined
    | Date | RegExp | Uint8Array | ArrayBuffer
    | Value[] | { [key: string]: Value }

  /** Event map for the typed form: `Eventcast<{ myevent: [string, number] }>`. */
  type EventMap = Record<string, any[]>

  /** Events the instance itself emits. */
  interface BuiltinEvents {
    start: []
    stop: []
    error: [err: EventcastError]
    gap: [gap: Gap]
    /** The send queue has room again after `emit` threw `EBACKPRESSURE`. */
    drain: []
    replConnected: [client: ReplClient]
    replDisconnected: [client: ReplClient]
    /** A peer appeared (its first beacon; a 0.1.x sender: its first event). */
    peerUp: [peer: Peer]
    /** A peer left: it said goodbye (stopped), went silent for `presence.timeout`, or was evicted for room. */
    peerDown: [peer: PeerDown]
    /** A known peer changed its `name` or `meta`. */
    peerUpdate: [peer: Peer]
  }

  /**
   * Request map for the typed form: request name → `[args, result]`, as in
   * `Eventcast<{}, { sum: [[number, number], number] }>`.
   */
  type RequestMap = Record<string, [any[], any]>
  /** Arguments of request K: typed for names in the map, free otherwise. */
  type RequestArgs<R extends RequestMap, K> = K extends keyof R ? R[K][0] : Value[]
  /** What a handler of request K returns (and `request` resolves with). */
  type RequestResult<R extends RequestMap, K> = K extends keyof R ? R[K][1] : any
  /** One reply of `gather()`: the value a node's handler returned, or the error it threw (`code` as thrown). */
  type GatherReply<T = any> =
    | { peer: string, value: T, error?: undefined }
    | { peer: string, error: EventcastError, value?: undefined }
  /** What `ec.timeout(ms)` returns: `request` and `gather` with that timeout. */
  interface WithTimeout<R extends RequestMap> {
    request<K extends string> (name: K, ...args: RequestArgs<R, K>): Promise<RequestResult<R, K>>
    gather<K extends string> (name: K, ...args: RequestArgs<R, K>): Promise<Array<GatherReply<RequestResult<R, K>>>>
  }

  type Listener<Args extends any[]> = (...args: Args) => void
  type AllEvents<E extends EventMap> = E & BuiltinEvents
  /** Arguments of event K: typed for names in the map (and built-in events), free otherwise. */
  type ArgsOf<E extends EventMap, K> = K extends keyof AllEvents<E> ? AllEvents<E>[K] : Value[]
  type ListenerOf<E extends EventMap, K> = K extends keyof AllEvents<E> ? Listener<AllEvents<E>[K]> : (...args: any[]) => void

  // ---- pattern listeners ----
  /**
   * A pattern or any listener: the event's name, then its arguments. Names
   * come from peers, so any name may arrive: the arguments are not typed by
   * the event map.
   */
  type PatternListener = (name: string, ...args: any[]) => void
  // ---- end of pattern listeners ----
}

type TypedMethods = 'emit' | 'on' | 'addListener' | 'once' | 'prependListener' | 'prependOnceListener' | 'off' | 'removeListener'

interface Eventcast<E extends Eventcast.EventMap = Eventcast.EventMap, R extends Eventcast.RequestMap = Eventcast.RequestMap> extends Omit<EventEmitter, TypedMethods> {
  /** Instance id, 16 lower-case hex chars. */
  readonly id: string
  /** The resolved options. */
  readonly config: Eventcast.Config
  readonly status: Eventcast.Status
  /** What our datagrams advertise (`meta.host`, `meta.port`), as the native node decides it. */
  getAddress (): Eventcast.Address
  /** Node counters (datagrams, events, repairs, gaps, rejections, memory held). */
  stats (): Eventcast.Stats
  /** The peers this node knows (presence), sorted by id; `[]` while stopped or with `presence: false`. */
  peers (): Eventcast.Peer[]
  /** Changes the advertised `meta` (peers get 'peerUpdate'); `ERR_EVENTCAST_OPTION_VALUE` when invalid or presence is off. */
  setMeta (meta: { [key: string]: Eventcast.JsonValue }): this
  /** Connected REPL clients. */
  clients (): number
  /** The REPL's counters: sessions now, connections refused over `replMaxClients`, sessions closed idle. */
  replStats (): Eventcast.ReplStats
  /**
   * Closes the REPL server and its sessions. The REPL (`replEnabled` or a
   * `replPort`) is opened by the constructor and outlives `stop()`/`start()`,
   * as in 0.1.x; while open it keeps the process alive. Resolves when closed.
   */
  closeRepl (): Promise<void>

  /** Log levels, one per stream (`[50]` with `log: true` and defaults; `[]` without logging). */
  logLevel (): number[]
  /** Sets every component's level; returns the levels. Invalid: warning, no change. */
  logLevel (level: Eventcast.LogLevel): number[]
  /** Sets one component's level (`'eventcast'` or `'repl'`). */
  logLevel (component: 'eventcast' | 'repl', level: Eventcast.LogLevel): number[]

  /** Binds and joins the group; `cb()` when ready or `cb(err)`. Idempotent. */
  start (cb: (err?: Eventcast.EventcastError) => void): this
  start (): Promise<void>
  /** Leaves the group and closes; emits 'stop'. Idempotent. */
  stop (cb: (err?: Eventcast.EventcastError) => void): true
  stop (): Promise<void>

  /**
   * Sends the event to the group (when started), then emits it locally like
   * EventEmitter#emit. Throws TypeError `EPAYLOAD` before sending when an
   * argument cannot be carried (function, symbol, circular structure, too large),
   * and Error `EBACKPRESSURE` (nothing sent, nothing emitted locally) while
   * the send queue is full; 'drain' follows.
   */
  emit<K extends string | symbol> (event: K, ...args: Eventcast.ArgsOf<E, K>): boolean

  on<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  addListener<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  once<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  prependListener<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  prependOnceListener<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  off<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this
  removeListener<K extends string | symbol> (event: K, listener: Eventcast.ListenerOf<E, K>): this

  /**
   * Answers requests named `name`: the handler's return value (or what its
   * Promise resolves to) goes back to the requester; a throw or rejection
   * goes back as an error with its `message` and `code`. One handler per
   * name (`EHANDLEREXISTS`); requests never reach `on()` listeners.
   */
  handle<K extends string> (
    name: K,
    handler: (this: this, ...args: Eventcast.RequestArgs<R, K>) => Eventcast.RequestResult<R, K> | Promise<Eventcast.RequestResult<R, K>>
  ): this
  /** Removes the handler of `name`; whether there was one. */
  unhandle (name: string): boolean
  /**
   * Asks the group; resolves with the first reply's value. Rejects `ETIMEDOUT`
   * after `requestTimeout` ms, `EREMOTE` (`peer`, `remoteCode`) when the first
   * reply is an error, `ENOTSTARTED` before start().
   */
  request<K extends string> (name: K, ...args: Eventcast.RequestArgs<R, K>): Promise<Eventcast.RequestResult<R, K>>
  /** Asks the group; after `requestTimeout` ms resolves with every reply, one per node (`[]` when none). */
  gather<K extends string> (name: K, ...args: Eventcast.RequestArgs<R, K>): Promise<Array<Eventcast.GatherReply<Eventcast.RequestResult<R, K>>>>
  /** `ec.timeout(ms).request(...)` / `.gather(...)`: one call with its own timeout (1–3600000 ms). */
  timeout (ms: number): Eventcast.WithTimeout<R>
  // ---- pattern listeners ----
  /**
   * Calls `listener(name, ...args)` for every event whose name matches
   * `pattern`: NATS wildcards on `.`-separated names, `*` one token (`'orders.*'`
   * matches `orders.eu`, not `orders` nor `orders.eu.paid`), `>` one or more
   * trailing tokens (`'orders.>'`); other tokens match literally. It gets
   * the events named listeners get (received, and emitted locally by `emit`),
   * after the named listeners, in registration order with the other pattern
   * and any listeners; never lifecycle events (`start`, `stop`, `gap`,
   * `peerUp`, ...) nor protocol messages. A received `'error'` event comes
   * as it was sent (`'error', ...args`). `on('a.*')` still listens to the
   * literal name `a.*`.
   *
   * Throws TypeError `EPATTERN` for an invalid pattern (empty token, `*`/`>`
   * inside a token, `>` not last, over 1024 bytes) and `ERR_INVALID_ARG_TYPE`
   * for a listener that is not a function.
   */
  onPattern (pattern: string, listener: Eventcast.PatternListener): this
  /** Removes the last registration of `listener` for `pattern` (the same string), or without a listener every one of `pattern`. */
  offPattern (pattern: string, listener?: Eventcast.PatternListener): this
  /** Calls `listener(name, ...args)` for every event (as {@link onPattern} with a pattern every name matches). */
  onAny (listener: Eventcast.PatternListener): this
  /** Removes the last `onAny` registration of `listener`, or without a listener every `onAny` listener. */
  offAny (listener?: Eventcast.PatternListener): this
  // ---- end of pattern listeners ----
}

interface EventcastConstructor {
  new <E extends Eventcast.EventMap = Eventcast.EventMap, R extends Eventcast.RequestMap = Eventcast.RequestMap> (options?: number | Eventcast.Options): Eventcast<E, R>
  <E extends Eventcast.EventMap = Eventcast.EventMap, R extends Eventcast.RequestMap = Eventcast.RequestMap> (options?: number | Eventcast.Options): Eventcast<E, R>
  readonly prototype: Eventcast
  /** A random integer port in [min, max] (default 49152–65535). */
  getRandomPort (min?: number, max?: number): number
  /** Wire protocol version (3, as eventcast 0.1.x). */
  readonly protocolVersion: 3
  /** Option validation error codes. */
  readonly codes: Eventcast.Codes
  readonly Eventcast: EventcastConstructor
  readonly default: EventcastConstructor
}

declare const Eventcast: EventcastConstructor

export = Eventcast
