'use strict'
// Options of eventcast 0.1.x: defaults, validation (TypeError/RangeError with
// stable codes) and the resolved `config`. Unknown option names are ignored.
const net = require('node:net')
const { optionBounds, optionTable, presenceLimits } = require('../binding.js')
const { resolveLevel } = require('./logger.js')
const { codedError: fail } = require('./errors.js')

const PORT_MIN = 49152
const PORT_MAX = 65535
/** Longest advertised `name` (Rust's `wire::beacon::MAX_NAME_BYTES`; Rust checks it too). */
const NAME_MAX_BYTES = presenceLimits().nameMaxBytes

/**
 * Every option's default, from Rust's option table (`OPTION_TABLE` in
 * crates/eventcast/src/option_table.rs, the one declaration of every option);
 * `undefined` where the default is decided at start (a random port, any
 * interface).
 */
const TABLE = optionTable()
const DEFAULTS = Object.freeze(Object.fromEntries(TABLE.map((s) => [s.name, s.defaultJson == null ? undefined : JSON.parse(s.defaultJson)])))

/**
 * `{option: [min, max]}` of the numeric options the native side checks too,
 * inclusive (`OPTION_BOUNDS`, the table's bounded options but the REPL's).
 */
const BOUNDS = Object.freeze(Object.fromEntries(optionBounds().map((b) => [b.option, Object.freeze([b.min, b.max])])))

/**
 * Bounds of the options only this JS face has (the REPL's): in the same
 * table, but the native side never sees them.
 */
const JS_BOUNDS = Object.freeze(Object.fromEntries(TABLE.filter((s) => s.min != null && !BOUNDS[s.name]).map((s) => [s.name, Object.freeze([s.min, s.max])])))

/** Options that only mean something on multicast; with a NATS transport they are an error. */
const MULTICAST_ONLY = Object.freeze(['address', 'multicastMembership', 'multicastInterface', 'multicastLoopback', 'multicastTtl', 'maxPayloadSize'])
/** Settings of `nats: {...}`. */
const NATS_SETTINGS = Object.freeze(['token', 'user', 'pass', 'credsFile', 'tls', 'name', 'subject', 'group'])
const NATS_SCHEMES = Object.freeze(['nats:', 'tls:', 'ws:', 'wss:'])

/** Error codes thrown by option validation (also on `err.code`). */
const codes = Object.freeze({
  OPTIONS: 'ERR_EVENTCAST_OPTIONS', // the argument is neither a port number nor an options object
  PORT: 'ERR_EVENTCAST_PORT', // port / replPort: not an integer (TypeError) or outside 1–65535 (RangeError)
  ADDRESS: 'ERR_EVENTCAST_ADDRESS', // address, multicastMembership, multicastInterface, replHost
  VALUE: 'ERR_EVENTCAST_OPTION_VALUE', // booleans, sizes, ttl, attempts
  ENCRYPT: 'ERR_EVENTCAST_ENCRYPT' // encrypt settings
})

function getRandomPort (min = PORT_MIN, max = PORT_MAX) {
  if (!Number.isInteger(min) || !Number.isInteger(max)) {
    throw fail(TypeError, codes.PORT, `getRandomPort: min and max must be integers, got ${min} and ${max}`)
  }
  if (min < 1 || max > 65535 || min > max) {
    throw fail(RangeError, codes.PORT, `getRandomPort: need 1 <= min <= max <= 65535, got ${min} and ${max}`)
  }
  return min + Math.floor(Math.random() * (max - min + 1))
}

function checkPort (name, v) {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw fail(TypeError, codes.PORT, `option ${name} must be an integer port number, got ${describe(v)}`)
  }
  if (v < 1 || v > 65535) throw fail(RangeError, codes.PORT, `option ${name} must be within 1–65535, got ${v}`)
  return v
}

function checkIP (name, v) {
  if (typeof v !== 'string' || !net.isIP(v)) {
    throw fail(TypeError, codes.ADDRESS, `option ${name} must be an IPv4 or IPv6 address string, got ${describe(v)}`)
  }
  return v
}

/** Longest interface name Linux takes (IFNAMSIZ minus the NUL), as Rust's MAX_INTERFACE_NAME. */
const MAX_INTERFACE_NAME = 15
const MAX_INTERFACE_INDEX = 0xffffffff

/**
 * `multicastInterface` (or a group's `%zone`): an address of the interface
 * (a string), its name (`'eth1'`) or its index (a number, or digits). Whether
 * the host has it is decided at start(), by Rust (`ENOINTERFACE`).
 */
function checkInterface (name, v) {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > MAX_INTERFACE_INDEX) {
      throw fail(RangeError, codes.ADDRESS, `option ${name}: an interface index is an integer within 1–${MAX_INTERFACE_INDEX}, got ${v}`)
    }
    return v
  }
  if (typeof v !== 'string') {
    throw fail(TypeError, codes.ADDRESS, `option ${name} must be an interface name ('eth1'), an address of it, or its index, got ${describe(v)}`)
  }
  if (net.isIP(v)) return v
  if (/^[0-9]+$/.test(v)) return checkInterface(name, Number(v))
  if (Buffer.byteLength(v) < 1 || Buffer.byteLength(v) > MAX_INTERFACE_NAME || v === '.' || v === '..' || /[\s/\0]/.test(v)) {
    throw fail(TypeError, codes.ADDRESS, `option ${name}: ${describe(v)} is not an interface name (1–${MAX_INTERFACE_NAME} bytes, no '/', spaces or NUL)`)
  }
  return v
}

/** The family (4 or 6) of an address option value; 0 for a name or index. */
function family (v) {
  return typeof v === 'string' ? net.isIP(v) : 0
}

/** Unspecified addresses of either family mean "any" (the default address is 0.0.0.0 whatever the group). */
function isUnspecified (v) {
  return v === '0.0.0.0' || (net.isIPv6(v) && /^[0:]+$/.test(v))
}

/**
 * An IPv6 group whose scope (the low four bits of its second byte) confines
 * it to one link or interface (ff02::, ff12::, ff01::, ...): it needs the
 * interface named. Rust's `needs_interface`.
 */
function needsInterface (group) {
  return net.isIPv6(group) && (Number.parseInt(group.split(':')[0], 16) & 0xf) <= 2
}

function checkInt (name, v, min, max) {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw fail(TypeError, codes.VALUE, `option ${name} must be an integer, got ${describe(v)}`)
  }
  if (v < min || v > max) throw fail(RangeError, codes.VALUE, `option ${name} must be within ${min}–${max}, got ${v}`)
  return v
}

/** An integer within the option's bounds from `BOUNDS`. */
function checkBounded (name, v) {
  const bound = BOUNDS[name] || JS_BOUNDS[name]
  if (bound === undefined) throw new Error(`eventcast: no bounds for option ${name} in the native table (out of date addon?)`)
  return checkInt(name, v, bound[0], bound[1])
}

function checkBool (name, v) {
  if (typeof v !== 'boolean') throw fail(TypeError, codes.VALUE, `option ${name} must be a boolean, got ${describe(v)}`)
  return v
}

function describe (v) {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'bigint') return `${v}n`
  if (v === null) return 'null'
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return String(v)
}

/**
 * `transport` (else `$EVENTCAST_TRANSPORT`): 'multicast' (default) or a
 * comma-separated list of NATS server URLs. Returns the server list, or null for multicast.
 */
function checkTransport (v, env) {
  let from = 'option transport'
  if (v === undefined || v === null) {
    v = env.EVENTCAST_TRANSPORT
    from = 'EVENTCAST_TRANSPORT'
    if (v === undefined || v.trim() === '') return null
  }
  if (typeof v !== 'string') {
    throw fail(TypeError, codes.OPTIONS, `${from} must be 'multicast' or NATS server URLs ('nats://host:4222,...'), got ${describe(v)}`)
  }
  if (v.trim() === 'multicast') return null
  const servers = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (servers.length === 0) throw fail(TypeError, codes.OPTIONS, `${from} names no NATS server`)
  for (const s of servers) {
    let url
    try {
      url = new URL(s)
    } catch {
      throw fail(TypeError, codes.OPTIONS, `${from}: ${JSON.stringify(s)} is not a URL (nats://host:port)`)
    }
    if (!NATS_SCHEMES.includes(url.protocol)) {
      throw fail(TypeError, codes.OPTIONS, `${from}: ${JSON.stringify(s)} is neither 'multicast' nor a NATS URL (nats://, tls://, ws://, wss://)`)
    }
    if (url.hostname === '' || (url.pathname !== '' && url.pathname !== '/') || url.port === '0') {
      throw fail(TypeError, codes.OPTIONS, `${from}: ${JSON.stringify(s)} must be scheme://host[:port]`)
    }
  }
  return servers
}

function isMulticastIPv4 (s) {
  const first = Number(s.split('.')[0])
  return net.isIPv4(s) && first >= 224 && first <= 239
}

/** IPv6 multicast: ff00::/8 (the first group is always written out, `ffXY`). */
function isMulticastIPv6 (s) {
  return net.isIPv6(s) && /^ff[0-9a-f]{2}:/i.test(s)
}

function isMulticast (s) {
  return typeof s === 'string' && (isMulticastIPv4(s) || isMulticastIPv6(s))
}

function validSubject (s) {
  return typeof s === 'string' && s.length > 0 && s.length <= 255 &&
    s.split('.').every((t) => t.length > 0 && !/[\s*>]/.test(t))
}

/** `nats: {...}` with a NATS transport (`servers` non-null); an error without one. */
function checkNats (v, servers) {
  if (v === undefined || v === null) return servers ? { servers } : undefined
  if (!servers) {
    throw fail(TypeError, codes.OPTIONS, "option nats only applies to a NATS transport (transport: 'nats://host:4222' or EVENTCAST_TRANSPORT)")
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw fail(TypeError, codes.OPTIONS, `option nats must be an object, got ${describe(v)}`)
  const out = { servers }
  for (const k of Object.keys(v)) {
    if (!NATS_SETTINGS.includes(k)) throw fail(TypeError, codes.OPTIONS, `unknown NATS setting ${k} (supported: ${NATS_SETTINGS.join(', ')})`)
    if (v[k] === undefined || v[k] === null) continue
    if (k === 'tls') {
      const t = v.tls
      if (typeof t !== 'object' || Array.isArray(t)) throw fail(TypeError, codes.OPTIONS, `option nats.tls must be {ca, cert, key}, got ${describe(t)}`)
      for (const f of Object.keys(t)) {
        if (!['ca', 'cert', 'key'].includes(f)) throw fail(TypeError, codes.OPTIONS, `unknown NATS TLS setting ${f} (supported: ca, cert, key)`)
        if (t[f] !== undefined && typeof t[f] !== 'string') throw fail(TypeError, codes.OPTIONS, `option nats.tls.${f} must be a file path, got ${describe(t[f])}`)
      }
      if ((t.cert === undefined) !== (t.key === undefined)) throw fail(TypeError, codes.OPTIONS, 'options nats.tls.cert and nats.tls.key go together')
      out.tls = Object.freeze({ ca: t.ca, cert: t.cert, key: t.key })
      continue
    }
    if (typeof v[k] !== 'string') throw fail(TypeError, codes.OPTIONS, `option nats.${k} must be a string, got ${describe(v[k])}`)
    out[k] = v[k]
  }
  if ((out.user === undefined) !== (out.pass === undefined)) throw fail(TypeError, codes.OPTIONS, 'options nats.user and nats.pass go together')
  if (out.subject !== undefined && !validSubject(out.subject)) {
    throw fail(TypeError, codes.OPTIONS, `option nats.subject must be a literal NATS subject (dot-separated, no spaces, * or >), got ${describe(out.subject)}`)
  }
  // The LAN group the encrypt key is bound to (a bridged encrypted LAN on that group); not the subject.
  if (out.group !== undefined && !isMulticast(out.group)) {
    throw fail(TypeError, codes.OPTIONS, `option nats.group must be a multicast address (IPv4 224.0.0.0–239.255.255.255 or IPv6 ff00::/8), got ${describe(out.group)}`)
  }
  return out
}

function checkEncrypt (v) {
  if (v === undefined || v === null || v === false) return false
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw fail(TypeError, codes.ENCRYPT, `option encrypt must be false or {key, legacy?}, got ${describe(v)}`)
  }
  for (const k of Object.keys(v)) {
    if (k === 'key' || k === 'legacy') continue
    // 0.1.x configs may name the only algorithm it had; anything else is unsupported.
    if (k === 'algorithm' && (v.algorithm === 'aes128' || v.algorithm === 'aes-128-cbc')) continue
    throw fail(TypeError, codes.ENCRYPT, `unknown encryption setting ${k}${k === 'algorithm' ? `=${describe(v.algorithm)}` : ''} (supported: key, legacy)`)
  }
  if (typeof v.key !== 'string' || v.key.length === 0) {
    throw fail(TypeError, codes.ENCRYPT, 'option encrypt.key must be a non-empty string')
  }
  if (v.legacy !== undefined && typeof v.legacy !== 'boolean') {
    throw fail(TypeError, codes.ENCRYPT, `option encrypt.legacy must be a boolean, got ${describe(v.legacy)}`)
  }
  return { key: v.key, legacy: v.legacy === true }
}

/**
 * `multicastMembership` (IPv4 or IPv6, an IPv6 one optionally with a
 * `%zone` naming the interface) with `multicastInterface` and `address`:
 * `{ multicastMembership, multicastInterface }`, the zone moved into the
 * interface. The same checks as Rust's `check_group`, with this face's codes.
 */
function checkGroup (membership, iface, address) {
  if (typeof membership !== 'string') {
    throw fail(TypeError, codes.ADDRESS, `option multicastMembership must be a multicast address string, got ${describe(membership)}`)
  }
  let group = membership
  let zone
  const pct = membership.indexOf('%')
  if (pct >= 0) {
    group = membership.slice(0, pct)
    zone = checkInterface('multicastMembership (its %zone)', membership.slice(pct + 1))
    if (!net.isIPv6(group)) throw fail(TypeError, codes.ADDRESS, `option multicastMembership ${membership}: only IPv6 groups take a %zone`)
  }
  checkIP('multicastMembership', group)
  if (!isMulticast(group)) {
    throw fail(RangeError, codes.ADDRESS, `option multicastMembership must be a multicast address (IPv4 224.0.0.0–239.255.255.255 or IPv6 ff00::/8), got ${group}`)
  }
  let multicastInterface = iface === undefined || iface === null ? undefined : checkInterface('multicastInterface', iface)
  if (zone !== undefined) {
    if (multicastInterface !== undefined && String(multicastInterface) !== String(zone)) {
      throw fail(TypeError, codes.ADDRESS, `options multicastMembership ${membership} and multicastInterface ${multicastInterface} name different interfaces; give one`)
    }
    multicastInterface = zone
  }
  const fam = family(group)
  if (!isUnspecified(address) && family(address) !== fam) {
    throw fail(TypeError, codes.ADDRESS, `option address ${address} is IPv${family(address)}, the group ${group} is IPv${fam}`)
  }
  if (family(multicastInterface) && !isUnspecified(multicastInterface) && family(multicastInterface) !== fam) {
    throw fail(TypeError, codes.ADDRESS, `option multicastInterface ${multicastInterface} is IPv${family(multicastInterface)}, the group ${group} is IPv${fam} (name the interface instead)`)
  }
  if (isMulticast(String(multicastInterface))) {
    throw fail(TypeError, codes.ADDRESS, `option multicastInterface ${multicastInterface} is not a local interface address`)
  }
  if (needsInterface(group) && (multicastInterface === undefined || isUnspecified(multicastInterface))) {
    throw fail(TypeError, codes.ADDRESS, `option multicastMembership ${group} is a link-local IPv6 group: it exists only on one link, so name the interface (multicastInterface: 'eth0', or its index)`)
  }
  return { multicastMembership: group, multicastInterface }
}

/**
 * Resolves `Eventcast(arg)`'s argument into the full config.
 * Returns `{ config, warnings }` (warnings: invalid log level, ...).
 */
function resolveOptions (arg, env = process.env) {
  let given
  if (arg === undefined || arg === null) given = {}
  else if (typeof arg === 'number') given = { port: arg }
  else if (typeof arg === 'object' && !Array.isArray(arg)) given = arg
  else throw fail(TypeError, codes.OPTIONS, `Eventcast() takes a port number or an options object, got ${describe(arg)}`)

  const pick = (k) => (given[k] === undefined ? DEFAULTS[k] : given[k])
  const warnings = []
  const config = {}
  const servers = checkTransport(given.transport, env)
  if (servers) {
    const multicast = MULTICAST_ONLY.filter((k) => given[k] !== undefined)
    if (multicast.length > 0) {
      throw fail(TypeError, codes.OPTIONS, `option ${multicast.join(', ')} only applies to multicast, not to the NATS transport (${servers.join(',')})`)
    }
  }
  config.transport = servers ? 'nats' : 'multicast'
  const nats = checkNats(given.nats, servers)
  if (nats) config.nats = Object.freeze(nats)
  config.address = checkIP('address', pick('address'))
  config.port = given.port === undefined || given.port === null ? getRandomPort() : checkPort('port', given.port)
  Object.assign(config, checkGroup(pick('multicastMembership'), pick('multicastInterface'), config.address))
  config.multicastLoopback = checkBool('multicastLoopback', pick('multicastLoopback'))
  config.multicastTtl = checkBounded('multicastTtl', pick('multicastTtl'))
  config.maxPayloadSize = checkBounded('maxPayloadSize', pick('maxPayloadSize'))
  config.messageTtl = checkBounded('messageTtl', pick('messageTtl'))
  // 0.1.x spelled it messageRetransmitAttemps; both are accepted, the correct spelling wins.
  const attempts = given.messageRetransmitAttempts ?? given.messageRetransmitAttemps ?? DEFAULTS.messageRetransmitAttempts
  config.messageRetransmitAttempts = checkBounded('messageRetransmitAttempts', attempts)
  config.messageRetransmitAttemps = config.messageRetransmitAttempts
  config.sendQueueBytes = checkBounded('sendQueueBytes', pick('sendQueueBytes'))
  config.encrypt = checkEncrypt(given.encrypt)
  if (config.encrypt && config.encrypt.legacy && net.isIPv6(config.multicastMembership)) {
    throw fail(TypeError, codes.ENCRYPT, `option encrypt.legacy is 0.1.x's scheme, and 0.1.x nodes speak IPv4 only; on the IPv6 group ${config.multicastMembership} use encrypt: {key} (authenticated)`)
  }
  config.replHost = pick('replHost')
  if (typeof config.replHost !== 'string' || config.replHost.length === 0) {
    throw fail(TypeError, codes.ADDRESS, `option replHost must be a host name or address, got ${describe(config.replHost)}`)
  }
  const replPort = given.replPort
  config.replEnabled = checkBool('replEnabled', pick('replEnabled')) || (replPort !== undefined && replPort !== null)
  config.replPort = replPort === undefined || replPort === null
    ? (config.replEnabled ? getRandomPort() : undefined)
    : checkPort('replPort', replPort)
  config.replMaxClients = checkBounded('replMaxClients', pick('replMaxClients'))
  config.replIdleTimeout = checkBounded('replIdleTimeout', pick('replIdleTimeout'))
  config.requestTimeout = checkBounded('requestTimeout', pick('requestTimeout'))
  config.name = given.name === undefined || given.name === null ? defaultName() : checkName(given.name)
  // A copy (through its JSON, which also checks it): later changes to the caller's object do not leak in.
  config.meta = given.meta === undefined || given.meta === null ? {} : JSON.parse(metaJson('option meta', given.meta))
  config.presence = checkPresence(given.presence)
  config.log = checkBool('log', pick('log'))
  const level = resolveLevel(pick('logLevel'))
  if (level === undefined) {
    warnings.push(`invalid logLevel ${describe(given.logLevel)}, using "error" (valid: trace, debug, info, warn, error, fatal or 10–60)`)
    config.logLevel = 50
  } else {
    config.logLevel = level
  }
  return { config, warnings }
}

/** What a node advertises when `name` is not given: the process title, cut to 256 bytes. */
function defaultName () {
  return Buffer.from(String(process.title || 'node')).subarray(0, NAME_MAX_BYTES).toString().replace(/\uFFFD+$/, '')
}

function checkName (v) {
  if (typeof v !== 'string') throw fail(TypeError, codes.VALUE, `option name must be a string, got ${describe(v)}`)
  if (Buffer.byteLength(v) > NAME_MAX_BYTES) {
    throw fail(RangeError, codes.VALUE, `option name must be at most ${NAME_MAX_BYTES} bytes, got ${Buffer.byteLength(v)}`)
  }
  return v
}

/**
 * `meta` / `setMeta(meta)`: a plain object of JSON values, as JSON text
 * (Rust parses it and checks the 1 KiB bound on its BSON encoding).
 */
function metaJson (what, v) {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) {
    throw fail(TypeError, codes.VALUE, `${what} must be a plain object, got ${describe(v)}`)
  }
  let json
  try {
    json = JSON.stringify(v)
  } catch (err) {
    throw fail(TypeError, codes.VALUE, `${what} must be JSON-serializable: ${err.message}`)
  }
  return json
}

/** `presence`: true (defaults), false (off), or `{ interval, timeout, maxPeers }` in ms. */
function checkPresence (v) {
  if (v === undefined || v === null || v === true) v = {}
  if (v === false) return false
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw fail(TypeError, codes.VALUE, `option presence must be a boolean or { interval, timeout, maxPeers }, got ${describe(v)}`)
  }
  const p = {
    interval: checkBounded('presence.interval', v.interval ?? DEFAULTS['presence.interval']),
    timeout: checkBounded('presence.timeout', v.timeout ?? DEFAULTS['presence.timeout']),
    maxPeers: checkBounded('presence.maxPeers', v.maxPeers ?? DEFAULTS['presence.maxPeers'])
  }
  if (p.timeout < 2 * p.interval) {
    throw fail(RangeError, codes.VALUE, `option presence.timeout (${p.timeout} ms) must be at least twice presence.interval (${p.interval} ms)`)
  }
  return Object.freeze(p)
}

/** The options object NativeEventcast takes. */
function nativeOptions (config) {
  return {
    address: config.address,
    port: config.port,
    multicastMembership: config.multicastMembership,
    multicastInterface: config.multicastInterface === undefined ? undefined : String(config.multicastInterface),
    multicastLoopback: config.multicastLoopback,
    multicastTtl: config.multicastTtl,
    maxPayloadSize: config.maxPayloadSize,
    messageTtl: config.messageTtl,
    messageRetransmitAttempts: config.messageRetransmitAttempts,
    sendQueueBytes: config.sendQueueBytes,
    encryptKey: config.encrypt ? config.encrypt.key : undefined,
    encryptLegacy: config.encrypt ? config.encrypt.legacy : undefined,
    name: config.name,
    metaJson: JSON.stringify(config.meta),
    presenceOff: config.presence === false,
    presenceInterval: config.presence ? config.presence.interval : undefined,
    presenceTimeout: config.presence ? config.presence.timeout : undefined,
    presenceMaxPeers: config.presence ? config.presence.maxPeers : undefined,
    nats: config.nats
      ? {
          servers: config.nats.servers,
          token: config.nats.token,
          user: config.nats.user,
          pass: config.nats.pass,
          credsFile: config.nats.credsFile,
          tlsCa: config.nats.tls && config.nats.tls.ca,
          tlsCert: config.nats.tls && config.nats.tls.cert,
          tlsKey: config.nats.tls && config.nats.tls.key,
          name: config.nats.name,
          subject: config.nats.subject,
          group: config.nats.group
        }
      : undefined
  }
}

/** A per-call request timeout (`ec.timeout(ms)`), checked like the `requestTimeout` option. */
function checkRequestTimeout (ms) {
  return checkBounded('requestTimeout', ms)
}

module.exports = { DEFAULTS, BOUNDS, JS_BOUNDS, codes, resolveOptions, nativeOptions, metaJson, checkRequestTimeout, getRandomPort, PORT_MIN, PORT_MAX }
