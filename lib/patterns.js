'use strict'
// Pattern and any listeners: onPattern/offPattern/onAny/offAny.
//
// The rule (NATS wildcards on '.'-separated names: '*' one token, '>' one or
// more trailing tokens) is Rust's: crates/eventcast/src/pattern.rs. Patterns
// are parsed there (binding.patternTokens: the tokens, or a TypeError with
// code EPATTERN), so JS accepts exactly what the Rust API and the CLI accept;
// names are matched here, against those tokens, because a call into Rust per
// event and listener would cost more than the match. Both matchers run the
// one table of cases in crates/eventcast/tests/fixtures/patterns.json (the
// Rust unit tests and __test__/patterns.test.js), so they cannot drift.
//
// Which events: those the instance's named listeners get, received and
// emitted locally, after the named listeners, in registration order (pattern
// and any listeners in one list). Never the instance's own lifecycle events
// (reserved names: emit() keeps them local and returns before they get here)
// nor protocol messages (the engine never delivers them).
const { codedError } = require('./errors.js')
const binding = require('../binding.js')

// The registrations of an instance: null (the prototype's default: the hot
// paths check this one value) or a non-empty array, replaced on every change
// (copy on write), so an event being delivered keeps the list it started
// with, as EventEmitter#emit does with its listeners.
const kPatterns = Symbol('eventcast.patterns')

// How many instances of this process have a registration (a non-null list).
// The hot paths test `inUse.count !== 0` before `this[kPatterns]`: a module
// constant's field costs next to nothing, where the symbol lookup on the
// instance (found on the prototype) measured some 15 ns per received event
// (bench: A/B of _onBatch with and without it, in one process). An instance
// dropped with listeners still registered stays counted: the others then pay
// that lookup, nothing more.
const inUse = { count: 0 }

function checkListener (method, listener) {
  if (typeof listener !== 'function') {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `${method}: the listener must be a function, got ${typeof listener}`)
  }
}

/** The tokens of a valid pattern (Rust parses it), or a TypeError with code EPATTERN. */
function tokensOf (method, pattern) {
  if (typeof pattern !== 'string') {
    throw codedError(TypeError, 'EPATTERN', `${method}: the pattern must be a string ('orders.*', 'metrics.>'), got ${pattern === null ? 'null' : typeof pattern}`)
  }
  return binding.patternTokens(pattern) // throws TypeError EPATTERN saying which rule it breaks
}

/**
 * Whether `name` matches `tokens` (any token may be empty in a name: split at
 * every '.'). `pos` is where the name's next token starts; past the end, no
 * token is left. No allocation: this runs per event and listener.
 */
function matchTokens (tokens, name) {
  let pos = 0
  for (let i = 0; i < tokens.length; i++) {
    if (pos > name.length) return false // the name has fewer tokens
    const t = tokens[i]
    if (t === '>') return true // last (Rust checked), and at least one token is left
    let end = name.indexOf('.', pos)
    if (end === -1) end = name.length
    if (t !== '*' && (end - pos !== t.length || !name.startsWith(t, pos))) return false
    pos = end + 1
  }
  return pos === name.length + 1 // every token of the name consumed
}

/** A matcher for `tokens`: the common shapes as one string comparison each. */
function compile (tokens) {
  const last = tokens.length - 1
  const wild = tokens.findIndex((t) => t === '*' || t === '>')
  if (wild === -1) { // literal: one name
    const exact = tokens.join('.')
    return (name) => name === exact
  }
  if (wild === last && tokens[last] === '>') { // 'a.b.>': a prefix
    if (last === 0) return () => true
    const prefix = tokens.slice(0, last).join('.') + '.'
    return (name) => name.startsWith(prefix)
  }
  return (name) => matchTokens(tokens, name)
}

function add (self, record) {
  const list = self[kPatterns]
  if (list === null) inUse.count++
  self[kPatterns] = list === null ? [record] : [...list, record]
  return self
}

/** Removes the last registration `pred` selects, or with `all` every one. */
function remove (self, pred, all) {
  const list = self[kPatterns]
  if (list === null) return self
  let next
  if (all) {
    next = list.filter((r) => !pred(r))
  } else {
    let i = list.length - 1
    while (i >= 0 && !pred(list[i])) i--
    if (i < 0) return self
    next = list.slice(0, i).concat(list.slice(i + 1))
  }
  if (next.length === 0) inUse.count--
  self[kPatterns] = next.length === 0 ? null : next
  return self
}

const methods = {
  /**
   * Calls `listener(name, ...args)` for every event whose name matches
   * `pattern` (see the README's "Pattern listeners"). Returns `this`.
   */
  onPattern (pattern, listener) {
    const tokens = tokensOf('onPattern', pattern)
    checkListener('onPattern', listener)
    return add(this, { pattern, match: compile(tokens), listener })
  },

  /**
   * Removes the last registration of `listener` for `pattern` (the same
   * string), or without a listener every registration of `pattern`. Returns `this`.
   */
  offPattern (pattern, listener) {
    tokensOf('offPattern', pattern)
    if (listener === undefined) return remove(this, (r) => r.pattern === pattern, true)
    checkListener('offPattern', listener)
    return remove(this, (r) => r.pattern === pattern && r.listener === listener, false)
  },

  /** Calls `listener(name, ...args)` for every event. Returns `this`. */
  onAny (listener) {
    checkListener('onAny', listener)
    return add(this, { pattern: null, match: () => true, listener })
  },

  /** Removes the last registration of `listener` by onAny, or without one every onAny listener. Returns `this`. */
  offAny (listener) {
    if (listener === undefined) return remove(this, (r) => r.pattern === null, true)
    checkListener('offAny', listener)
    return remove(this, (r) => r.pattern === null && r.listener === listener, false)
  }
}

/** Adds the methods to the class's prototype, and the null the hot paths check. */
function install (proto) {
  Object.defineProperty(proto, kPatterns, { value: null, writable: true, configurable: true })
  for (const [name, fn] of Object.entries(methods)) {
    Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true })
  }
}

/**
 * Calls the matching pattern and any listeners of `self` with `args`
 * (`[name, ...args]`: a received batch entry or emit()'s arguments), in
 * registration order; a listener's exception propagates, as from
 * EventEmitter#emit, and ends this delivery. Returns whether any listener was
 * called. Only called when `self[kPatterns] !== null`.
 */
function emitToPatterns (self, args) {
  const list = self[kPatterns]
  let name = args[0]
  if (typeof name !== 'string') { // emit(42): it travels as '42'
    name = String(name)
    args = [name, ...Array.prototype.slice.call(args, 1)]
  }
  let called = false
  for (let i = 0; i < list.length; i++) {
    const r = list[i]
    if (r.match(name)) {
      called = true
      r.listener.apply(self, args)
    }
  }
  return called
}

module.exports = { kPatterns, inUse, install, emitToPatterns, matchTokens, compile }
