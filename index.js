'use strict'
// eventcast — a network EventEmitter over UDP multicast, no broker.
// The public JS API (a drop-in replacement for eventcast 0.1.x) over the Rust
// node in the native addon (binding.js is napi-rs's generated loader).
const { codedError } = require('./lib/errors.js')
const { EventEmitter } = require('node:events')
const binding = require('./binding.js')
const { Logger, LEVELS, resolveLevel } = require('./lib/logger.js')
const { resolveOptions, nativeOptions, getRandomPort, metaJson, checkRequestTimeout, codes: optionCodes } = require('./lib/options.js')
const { ReplServer } = require('./lib/repl.js')
const { Requests } = require('./lib/requests.js')
// Pattern listeners (onPattern/offPattern/onAny/offAny): lib/patterns.js.
const patterns = require('./lib/patterns.js')
const kPatterns = patterns.kPatterns
const patternsInUse = patterns.inUse // { count }: instances with pattern listeners, the hot paths' first check

// The wire protocol version spoken: Rust's (wire::PROTOCOL_VERSION), never a JS copy.
const PROTOCOL_VERSION = binding.protocolVersion()
const emitLocal = EventEmitter.prototype.emit
// Events the instance emits on itself (start, stop, gap, newListener, ...):
// emit() delivers them locally only, and the engine drops received ones. The
// list is Rust's (crates/eventcast-engine/src/protocol/names.rs); the protocol's own names start with
// PROTOCOL_PREFIX and cannot be emitted at all.
const LOCAL_ONLY = new Set(binding.reservedEvents())
const PROTOCOL_PREFIX = binding.protocolPrefix()
// What each entry of a delivered batch is: an event is [name, ...args] (a
// string first); anything else starts with a number, its tag. The numbers
// are Rust's (crates/eventcast-node/src/delivery.rs), read once here.
const TAG = binding.batchTags()
const TAG_ERROR = TAG.error
const TAG_GAP = TAG.gap
const TAG_DONE = TAG.done
const TAG_DRAIN = TAG.drain
const TAG_PEER_UP = TAG.peerUp
const TAG_PEER_DOWN = TAG.peerDown
const TAG_PEER_UPDATE = TAG.peerUpdate
const TAG_REQUEST = TAG.request
const TAG_REPLY = TAG.reply
const TAG_REPLY_ERROR = TAG.replyError

// The native side builds each batch by calling collectEntry once per entry
// (`this` is the batch), and makes small Buffers over shared ArrayBuffers
// with makeBuffer, as Buffer.from does for small sizes: one call per entry or
// Buffer, where building arrays element by element from Rust cost far more.
binding.setDelivery(
  function collectEntry (...entry) { this.push(entry) },
  (ab, offset, length) => Buffer.from(ab, offset, length)
)

// The emit path: emitArgs(slot, name, ...args), a plain function taking the
// arguments as they are (crates/eventcast-node/src/emit.rs says why).
const emitArgs = binding.emitArgs

const kNative = Symbol('eventcast.native')
const kState = Symbol('eventcast.state')

// ---- Rust log records (tracing) → the loggers of started instances ----------
const rustLoggers = new Set()
let sinkInstalled = false

function updateRustLogLevel () {
  let min = Infinity
  for (const log of rustLoggers) min = Math.min(min, log.minLevel())
  binding.setLogLevel(Number.isFinite(min) ? min : 0)
}

function onRustLogs (records) {
  // One record goes to the first logger that wants it (several instances in one
  // process share the one Rust subscriber).
  for (const [level, target, msg] of records) {
    for (const log of rustLoggers) {
      if (log.enabled(level)) {
        log.write(level, msg, { component: 'rust', target })
        break
      }
    }
  }
}

function attachRustLogs (log) {
  if (!log.streams.length) return
  if (!sinkInstalled) {
    binding.setLogSink(onRustLogs)
    sinkInstalled = true
  }
  rustLoggers.add(log)
  updateRustLogLevel()
}

function detachRustLogs (log) {
  if (rustLoggers.delete(log) && sinkInstalled) updateRustLogLevel()
}

// ---- helpers ----------------------------------------------------------------
function failureToError (failure) {
  return codedError(Error, failure.code, failure.message)
}

/** Rethrows a listener's exception outside the batch loop (like an uncaught throw in a dgram listener). */
function rethrowLater (err) {
  process.nextTick(() => { throw err })
}

// ---- the class ----------------------------------------------------------------
class EventcastImpl extends EventEmitter {
  constructor (options) {
    super()
    const { config, warnings } = resolveOptions(options)
    const log = new Logger({
      name: 'eventcast',
      level: config.logLevel,
      streams: config.log ? [process.stdout] : []
    })
    let native
    try {
      native = new binding.NativeEventcast(nativeOptions(config))
    } catch (err) {
      // The Rust side validates too (e.g. a size it cannot honour).
      if (err && (err.code === 'EINVALIDOPTION' || err.code === 'ERR_INVALID_ADDRESS')) {
        throw codedError(RangeError, optionCodes.VALUE, err.message)
      }
      throw err
    }
    Object.defineProperty(this, kNative, { value: native })
    Object.defineProperty(this, kState, {
      value: {
        status: 'stopped',
        op: Promise.resolve(), // start/stop run one after another
        queued: 0, // start/stop calls not finished yet
        drained: null, // resolves when the native side delivered its last batch of a started period
        resolveDrained: null,
        repl: null, // the REPL server, from the constructor until closeRepl()
        replListening: null, // settles once the REPL listens or failed to
        log,
        slot: native.slot, // this node's number for emitArgs
        replLog: log.child({ component: 'repl' }),
        requests: new Requests(native, log, this), // handlers, and requests awaiting replies (lib/requests.js)
        config: Object.freeze({ ...config, encrypt: config.encrypt ? Object.freeze({ ...config.encrypt }) : false })
      }
    })
    Object.defineProperty(this, 'id', { value: native.id, enumerable: true })
    for (const w of warnings) log.force(LEVELS.warn, w)
    if (config.replEnabled) this._openRepl()
  }

  /**
   * The REPL lives as in 0.1.x: opened by the constructor, it survives
   * stop()/start() (an operator can stop and restart the node from its
   * prompt) until closeRepl(). While open it keeps the process alive.
   */
  _openRepl () {
    const st = this[kState]
    const repl = new ReplServer(this, {
      host: st.config.replHost,
      port: st.config.replPort,
      maxClients: st.config.replMaxClients,
      idleTimeout: st.config.replIdleTimeout,
      log: st.replLog,
      emit: (...a) => emitLocal.apply(this, a)
    })
    st.repl = repl
    st.replListening = repl.listen().catch((err) => {
      if (st.repl === repl) st.repl = null
      st.replLog.error(`REPL could not listen on ${st.config.replHost}:${st.config.replPort}: ${err.message}`, { code: err.code })
      process.nextTick(() => this._asyncError(err))
    })
  }

  /** Closes the REPL server and its sessions (see the README's REPL section). Resolves when closed. */
  closeRepl () {
    const st = this[kState]
    const repl = st.repl
    st.repl = null
    return repl ? repl.close() : Promise.resolve()
  }

  /** The resolved options. */
  get config () {
    return this[kState].config
  }

  /** 'stopped' | 'starting' | 'started' | 'stopping' */
  get status () {
    return this[kState].status
  }

  /**
   * `{host, port}`: what our datagrams carry as `meta.host`/`meta.port` (where
   * 0.1.x peers send repair requests). Rust decides it (crates/eventcast/src/socket.rs,
   * `advertised_addr`): for an IPv4 group `multicastInterface`'s address, else
   * a specific `address`, else the first non-loopback IPv4 address, else
   * 127.0.0.1; for an IPv6 group the source the kernel picks for the group on
   * the interface (see index.d.ts `Address`); and the group port.
   */
  getAddress () {
    return this[kNative].advertisedAddress()
  }

  /**
   * The peers this node knows (presence): `[{ id, host, port, hostname, name,
   * pid, version, meta, since, lastSeen, transport, bridged, legacy, stats,
   * delivered, gaps }]`, sorted by id; `[]` while stopped or with
   * `presence: false`. The shape is Rust's (`eventcast::peer_json`).
   */
  peers () {
    return JSON.parse(this[kNative].peersJson())
  }

  /**
   * Changes the application object this node advertises to its peers (they
   * get 'peerUpdate'). Throws, with code `ERR_EVENTCAST_OPTION_VALUE` as the
   * `meta` option does, a TypeError for what is not a plain JSON object and
   * a RangeError when it encodes to more than 1 KiB or presence is off.
   */
  setMeta (meta) {
    const json = metaJson('setMeta', meta)
    try {
      this[kNative].setMeta(json)
    } catch (err) {
      if (err && err.code === 'EINVALIDOPTION') throw codedError(RangeError, optionCodes.VALUE, err.message)
      throw err
    }
    return this
  }

  // ---- request/reply (lib/requests.js; README "Request/reply") ----------------

  /**
   * Answers requests named `name` with `fn(...args)`: its return value (or
   * the value its Promise resolves to) goes back to the requester; a throw
   * or rejection goes back as an error (`message`, `code`). One handler per
   * name: a second throws `EHANDLEREXISTS`. Requests never reach `on()`
   * listeners. Returns `this`.
   */
  handle (name, fn) {
    this[kState].requests.handle(name, fn)
    return this
  }

  /** Removes the handler of `name`; whether there was one. */
  unhandle (name) {
    return this[kState].requests.unhandle(name)
  }

  /**
   * Asks the group; resolves with the first reply's value. Rejects
   * `ETIMEDOUT` after `requestTimeout` ms without a reply, `EREMOTE` (with
   * `peer`, `remoteCode`) when the first reply is an error, `ENOTSTARTED`
   * before start().
   */
  request (name, ...args) {
    const st = this[kState]
    return st.requests.ask(st.status === 'started', name, args, st.config.requestTimeout, true)
  }

  /**
   * Asks the group; resolves, when `requestTimeout` ms have passed, with
   * every reply that came: `[{ peer, value } | { peer, error }]`, one per
   * replying node (`[]` when none).
   */
  gather (name, ...args) {
    const st = this[kState]
    return st.requests.ask(st.status === 'started', name, args, st.config.requestTimeout, false)
  }

  /** `ec.timeout(ms).request(...)` / `.gather(...)`: one call with its own timeout. */
  timeout (ms) {
    const timeoutMs = checkRequestTimeout(ms)
    const st = this[kState]
    return {
      request: (name, ...args) => st.requests.ask(st.status === 'started', name, args, timeoutMs, true),
      gather: (name, ...args) => st.requests.ask(st.status === 'started', name, args, timeoutMs, false)
    }
  }

  /** The node's counters (datagrams, events, repairs, gaps, rejections, memory in use). */
  stats () {
    return this[kNative].stats()
  }

  /** Number of connected REPL clients. */
  clients () {
    const repl = this[kState].repl
    return repl ? repl.clients() : 0
  }

  /**
   * The REPL's counters: `{clients, refused, idleClosed}` (sessions now,
   * connections refused because `replMaxClients` were connected, sessions
   * closed after `replIdleTimeout` without input). Zeros without a REPL.
   */
  replStats () {
    const repl = this[kState].repl
    return repl ? repl.stats() : { clients: 0, refused: 0, idleClosed: 0 }
  }

  /**
   * Log levels, one per stream (`[]` when `log` is false).
   * `logLevel(level)` sets every component; `logLevel(component, level)` sets
   * `'eventcast'` or `'repl'`. Invalid levels log a warning and change nothing.
   */
  logLevel (a, b) {
    const st = this[kState]
    if (a === undefined) return st.log.levels()
    const component = b === undefined ? undefined : a
    const raw = b === undefined ? a : b
    const level = resolveLevel(raw)
    if (level === undefined) {
      st.log.force(LEVELS.warn, `invalid log level ${JSON.stringify(raw)} (valid: ${Object.keys(LEVELS).join(', ')} or 10–60)`)
      return st.log.levels()
    }
    if (component === undefined) {
      st.log.levels(level)
      st.replLog.levels(level)
    } else if (component === 'eventcast') {
      st.log.levels(level)
    } else if (component === 'repl') {
      st.replLog.levels(level)
    } else {
      st.log.force(LEVELS.warn, `unknown log component ${JSON.stringify(component)} (valid: eventcast, repl)`)
      return st.log.levels()
    }
    if (rustLoggers.has(st.log)) updateRustLogLevel()
    return st.log.levels()
  }

  /**
   * Binds the socket and joins the group. Calls `cb()` once ready or `cb(err)`
   * (without a callback, failures go to 'error' listeners if any). Returns a
   * Promise without a callback, the instance with one. Idempotent.
   */
  start (cb) {
    const st = this[kState]
    if (st.status === 'stopped' && st.queued === 0) st.status = 'starting'
    const p = this._queue(() => this._start())
    return this._settle(p, cb, this)
  }

  /** Leaves the group and closes; emits 'stop'. Idempotent. Returns `true` with a callback, else a Promise. */
  stop (cb) {
    const st = this[kState]
    if (st.status === 'started' && st.queued === 0) st.status = 'stopping'
    const p = this._queue(() => this._stop())
    return this._settle(p, cb, true)
  }

  _queue (fn) {
    const st = this[kState]
    st.queued++
    const p = st.op.then(fn).finally(() => { st.queued-- })
    st.op = p.catch(() => {})
    return p
  }

  _settle (p, cb, syncValue) {
    if (typeof cb === 'function') {
      // Outside the promise chain: an exception in cb is an ordinary uncaught exception.
      p.then(() => process.nextTick(cb), (err) => process.nextTick(cb, err))
      return syncValue
    }
    const out = p.then(() => undefined)
    if (this.listenerCount('error') > 0) {
      // The 'error' listener handles it: the returned promise still rejects for
      // whoever awaits it, but ignoring it is no unhandled rejection.
      out.catch((err) => emitLocal.call(this, 'error', err))
    }
    return out
  }

  async _start () {
    const st = this[kState]
    if (st.status === 'started') return
    st.status = 'starting'
    st.drained = new Promise((resolve) => { st.resolveDrained = resolve })
    attachRustLogs(st.log)
    const onBatch = (batch) => this._onBatch(batch)
    const failure = await this[kNative].start(onBatch)
    if (failure) {
      detachRustLogs(st.log)
      st.status = 'stopped'
      st.log.error(`start failed: ${failure.message}`, { code: failure.code })
      throw failureToError(failure)
    }
    // Received datagrams are read on this thread from now on (see crates/eventcast-node/src/watch.rs).
    this[kNative].watch(onBatch)
    // Once started, a REPL the constructor opened is listening (or has logged why not).
    if (st.replListening) await st.replListening
    if (st.config.encrypt && st.config.encrypt.legacy && !st.warnedLegacy) {
      st.warnedLegacy = true
      // Shown whatever the log level, like the exposed-REPL warning: it is a security property.
      const msg = 'encrypt.legacy speaks eventcast 0.1.x\'s scheme: AES-128-CBC with a fixed IV and no integrity check. Anyone on the network can modify, forge and replay events. Use it only while 0.1.x nodes remain; encrypt: {key} alone is authenticated.'
      if (st.log.streams.length) st.log.force(40, msg)
      else process.emitWarning(msg, { code: 'EVENTCAST_LEGACY_ENCRYPTION' })
    }
    st.status = 'started'
    const { host, port } = this.getAddress()
    const where = st.config.nats
      ? `NATS ${st.config.nats.servers.join(',')} subject ${st.config.nats.subject || `eventcast.${port}`}`
      : `${st.config.multicastMembership.includes(':') ? `[${st.config.multicastMembership}]` : st.config.multicastMembership}:${port}`
    st.log.info(`started ${this.id} on ${where} (advertised ${host})`)
    emitLocal.call(this, 'start')
  }

  async _stop () {
    const st = this[kState]
    if (st.status === 'stopped') return
    st.status = 'stopping'
    this[kNative].unwatch()
    const failure = await this[kNative].stop()
    await st.drained // every received event was emitted before 'stop'
    detachRustLogs(st.log)
    st.status = 'stopped'
    st.log.info(`stopped ${this.id}`)
    emitLocal.call(this, 'stop')
    if (failure) throw failureToError(failure)
  }

  _onBatch (batch) {
    // One array per entry: [name, ...args] or [tag, a, b] (see crates/eventcast-node/src/delivery.rs).
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]
      if (typeof entry[0] === 'string') { // an event, ready for emit.apply
        if (entry[0] === 'error') {
          this._remoteError(entry)
          if (patternsInUse.count !== 0 && this[kPatterns] !== null) this._toPatterns(entry) // as it came
          continue
        }
        try {
          emitLocal.apply(this, entry)
        } catch (err) {
          rethrowLater(err)
        }
        if (patternsInUse.count !== 0 && this[kPatterns] !== null) this._toPatterns(entry) // after the named ones
        continue
      }
      switch (entry[0]) {
        case TAG_ERROR: // error, code, message
          this._asyncError(codedError(Error, entry[1], entry[2]))
          // The native node stopped itself after an internal failure: follow it.
          if (entry[1] === 'EINTERNAL') this.stop().catch(() => {})
          break
        case TAG_GAP: { // gap, senderId, count
          const info = { sender: entry[1], count: entry[2] }
          if (this.listenerCount('gap') > 0) {
            try {
              emitLocal.call(this, 'gap', info)
            } catch (err) {
              rethrowLater(err)
            }
          } else {
            this[kState].log.warn(`lost ${info.count} message(s) from ${info.sender} beyond repair`, info)
          }
          break
        }
        case TAG_DONE: { // done: the native side is done with this started period
          const st = this[kState]
          if (st.resolveDrained) st.resolveDrained()
          break
        }
        case TAG_DRAIN: // drain: the send queue has room again after an EBACKPRESSURE
          try {
            emitLocal.call(this, 'drain')
          } catch (err) {
            rethrowLater(err)
          }
          break
        case TAG_REQUEST: // request, name, fromId, rid, timeoutMs, ...args
          this[kState].requests.onRequest(entry[1], entry[2], entry[3], entry.slice(5))
          break
        case TAG_REPLY: // reply, rid, peerId, value
          this[kState].requests.onReply(entry[1], entry[2], false, entry[3])
          break
        case TAG_REPLY_ERROR: // replyError, rid, peerId, message, code
          this[kState].requests.onReply(entry[1], entry[2], true, entry[3], entry[4])
          break
        case TAG_PEER_UP: // peerUp, peerJson
        case TAG_PEER_UPDATE: // peerUpdate, peerJson
        case TAG_PEER_DOWN: { // peerDown, peerJson, reason
          const peer = JSON.parse(entry[1])
          const name = entry[0] === TAG_PEER_UP ? 'peerUp' : entry[0] === TAG_PEER_DOWN ? 'peerDown' : 'peerUpdate'
          if (name === 'peerDown') peer.reason = entry[2]
          try {
            emitLocal.call(this, name, peer)
          } catch (err) {
            rethrowLater(err)
          }
          break
        }
      }
    }
  }

  /**
   * A received 'error' event reaches 'error' listeners only as an Error with
   * code EREMOTE (its arguments in `err.args`): listeners can rely on getting
   * an Error, and one without such a listener is logged, never thrown.
   */
  _remoteError (args) {
    const first = args[1]
    const text = typeof first === 'string'
      ? first
      : (first !== null && typeof first === 'object' && typeof first.message === 'string' ? first.message : '')
    const err = codedError(Error, 'EREMOTE', `"error" event received from the network${text ? ': ' + text.slice(0, 200) : ''}`)
    err.args = args.slice(1)
    if (this.listenerCount('error') === 0) {
      this[kState].log.warn('received an "error" event with no "error" listener; dropped', { code: err.code })
      return
    }
    this._asyncError(err)
  }

  /** Errors that happen outside any call: to 'error' listeners if any, else to the log. */
  _asyncError (err) {
    if (this.listenerCount('error') > 0) {
      try {
        emitLocal.call(this, 'error', err)
      } catch (e) {
        rethrowLater(e)
      }
    } else {
      this[kState].log.warn(err.message, { code: err.code })
    }
  }

  /**
   * Sends the event to the group (when started), then emits it locally exactly
   * like EventEmitter#emit and returns its result. Arguments that cannot be
   * sent throw a TypeError with code 'EPAYLOAD' before anything is sent; a
   * full send queue (slow link) throws an Error 'EBACKPRESSURE', nothing sent
   * nor emitted locally, until 'drain'.
   */
  emit (name, ...args) {
    // Hot path: `apply(this, arguments)` instead of spreading `args` again
    // (one array fewer per call); the send error path lives in sendFailed().
    const st = this[kState]
    if (st === undefined || typeof name === 'symbol' || LOCAL_ONLY.has(name)) {
      return emitLocal.apply(this, arguments)
    }
    if (st.status === 'started') {
      try {
        emitArgs(st.slot, typeof name === 'string' ? name : String(name), ...args)
      } catch (err) {
        sendFailed(this, err)
      }
    } else {
      // Started, the engine refuses protocol names (EPAYLOAD); refuse them the same way when not.
      if (String(name).startsWith(PROTOCOL_PREFIX)) {
        throw codedError(TypeError, 'EPAYLOAD', `event name ${JSON.stringify(String(name))} is reserved for the protocol`)
      }
      st.log.warn(`emit(${JSON.stringify(String(name))}) while ${st.status}: emitted locally only`)
    }
    const had = emitLocal.apply(this, arguments)
    // One check when nobody listens by pattern; else those listeners, after the named
    // ones (emit then also returns true when one of them ran).
    if (patternsInUse.count === 0 || this[kPatterns] === null) return had
    return patterns.emitToPatterns(this, arguments) || had
  }
}

// ---- pattern listeners: onPattern/offPattern/onAny/offAny (lib/patterns.js) ----
patterns.install(EventcastImpl.prototype)
/**
 * A received event's pattern and any listeners, after its named listeners:
 * an exception ends them and is rethrown outside the batch loop, as for the
 * named listeners (rethrowLater).
 */
Object.defineProperty(EventcastImpl.prototype, '_toPatterns', {
  writable: true,
  configurable: true,
  value: function _toPatterns (entry) {
    try {
      patterns.emitToPatterns(this, entry)
    } catch (err) {
      rethrowLater(err)
    }
  }
})
// ---- end of pattern listeners ----

/**
 * emit()'s failure path: EPAYLOAD and EBACKPRESSURE (send queue full, wait for
 * 'drain') are thrown, nothing sent; a failed send never throws into the app.
 */
function sendFailed (self, err) {
  if (err && (err.code === 'EPAYLOAD' || err.code === 'EBACKPRESSURE')) throw err
  process.nextTick(() => self._asyncError(err))
}

/**
 * `Eventcast(port | options)` or `new Eventcast(...)`: a network EventEmitter.
 * @type {typeof EventcastImpl & ((options?: number | object) => EventcastImpl)}
 */
function Eventcast (options) {
  return Reflect.construct(EventcastImpl, [options], new.target || Eventcast)
}
Eventcast.prototype = EventcastImpl.prototype
Object.defineProperty(Eventcast.prototype, 'constructor', { value: Eventcast, writable: true, configurable: true })
Object.setPrototypeOf(Eventcast, EventEmitter)
Object.defineProperty(Eventcast, 'name', { value: 'Eventcast' })

/** A random port in [min, max] (default 49152–65535). */
Eventcast.getRandomPort = getRandomPort
/** The wire protocol version spoken (0.1.x's is 3). */
Eventcast.protocolVersion = PROTOCOL_VERSION
/** Error codes thrown by option validation. */
Eventcast.codes = optionCodes
Eventcast.Eventcast = Eventcast
Eventcast.default = Eventcast

module.exports = Eventcast
