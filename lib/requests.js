'use strict'
// Request/reply for one instance: its JS handlers, and its requests awaiting
// replies. The native node carries requests and replies (numbered messages
// of the sender's stream: repaired, chunked, sealed) and keeps the tables
// that bound what the network can make us hold (crates/eventcast/src/exchange.rs);
// this file times requests, runs handlers and settles promises.

const { codedError } = require('./errors.js')

function checkName (method, name) {
  if (typeof name !== 'string') {
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `${method}: the name must be a string, got ${typeof name}`)
  }
}

class Requests {
  /**
   * @param {object} native  the NativeEventcast
   * @param {object} log     the instance's logger
   * @param {object} owner   the Eventcast instance (`this` of handlers)
   */
  constructor (native, log, owner) {
    this.native = native
    this.log = log
    this.owner = owner
    this.handlers = new Map() // name -> fn
    this.asks = new Map() // request id (16 hex chars) -> { first, resolve, reject, timer, replies, name }
  }

  handle (name, fn) {
    checkName('handle', name)
    if (typeof fn !== 'function') {
      throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `handle(${JSON.stringify(name)}): the handler must be a function`)
    }
    this.native.handle(name) // EHANDLEREXISTS, EPAYLOAD for a reserved name
    this.handlers.set(name, fn)
  }

  unhandle (name) {
    checkName('unhandle', name)
    this.handlers.delete(name)
    return this.native.unhandle(name)
  }

  /**
   * Sends a request; resolves with the first reply's value (`first`) or
   * the array of every reply within `timeoutMs`.
   */
  ask (started, name, args, timeoutMs, first) {
    const method = first ? 'request' : 'gather'
    try {
      checkName(method, name)
    } catch (err) {
      return Promise.reject(err)
    }
    if (!started) {
      return Promise.reject(codedError(Error, 'ENOTSTARTED', `${method}(${JSON.stringify(name)}): the node is not started`))
    }
    let rid
    try {
      rid = this.native.request(first, timeoutMs, name, args)
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => {
      const ask = { first, resolve, reject, timer: null, replies: first ? null : [], name, timeoutMs }
      ask.timer = setTimeout(() => this._expire(rid), timeoutMs)
      this.asks.set(rid, ask)
    })
  }

  _expire (rid) {
    const ask = this.asks.get(rid)
    if (!ask) return
    this.asks.delete(rid)
    try {
      this.native.cancelRequest(rid)
    } catch (_) {
      // The native node forgets it by itself a few seconds later.
    }
    if (ask.first) {
      ask.reject(codedError(Error, 'ETIMEDOUT', `no reply to request ${JSON.stringify(ask.name)} within ${ask.timeoutMs} ms`))
    } else {
      ask.resolve(ask.replies)
    }
  }

  /** A reply entry: `value` when it carries one, else `message`/`code` of the remote error. */
  onReply (rid, peer, failed, valueOrMessage, code) {
    const ask = this.asks.get(rid)
    if (!ask) return // its caller stopped waiting
    if (ask.first) {
      this.asks.delete(rid)
      clearTimeout(ask.timer)
      this.native.cancelRequest(rid)
      if (!failed) return ask.resolve(valueOrMessage)
      const err = codedError(Error, 'EREMOTE', valueOrMessage)
      err.peer = peer
      err.remoteCode = code
      return ask.reject(err)
    }
    if (!failed) {
      ask.replies.push({ peer, value: valueOrMessage })
    } else {
      const error = codedError(Error, code || 'EREMOTE', valueOrMessage)
      error.peer = peer
      ask.replies.push({ peer, error })
    }
  }

  /** A request entry: runs the handler and sends what it returns or throws. */
  onRequest (name, from, rid, args) {
    const fn = this.handlers.get(name)
    if (fn === undefined) return // unhandled while the request was on its way: no reply
    let result
    try {
      result = fn.apply(this.owner, args)
    } catch (err) {
      this._fail(from, rid, err)
      return
    }
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      result.then((value) => this._answer(from, rid, name, value), (err) => this._fail(from, rid, err))
    } else {
      this._answer(from, rid, name, result)
    }
  }

  _answer (to, rid, name, value) {
    try {
      this.native.reply(to, rid, [value])
    } catch (err) {
      if (err && err.code === 'EPAYLOAD') {
        this.log.warn(`the reply to request ${JSON.stringify(name)} cannot travel: ${err.message}`, { code: err.code })
        this._fail(to, rid, err)
      } else {
        this._unsent(err)
      }
    }
  }

  _fail (to, rid, err) {
    const message = err instanceof Error ? err.message : String(err)
    const code = err !== null && typeof err === 'object' && typeof err.code === 'string' ? err.code : ''
    try {
      this.native.replyError(to, rid, message, code)
    } catch (e) {
      this._unsent(e)
    }
  }

  _unsent (err) {
    // Stopped meanwhile (ENOTSTARTED) or a full send queue: the requester times out.
    this.log.debug(`a reply was not sent: ${err && err.message}`, { code: err && err.code })
  }
}

module.exports = { Requests }
