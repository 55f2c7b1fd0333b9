'use strict'
// A small bunyan-compatible JSON logger: one JSON record per line with the
// fields bunyan writes (name, hostname, pid, level, msg, time, v: 0), so the
// `bunyan` CLI pretty-prints our output. Written here to avoid the bunyan
// package's optional native dependencies.
const os = require('node:os')

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 }

/** Resolves a level name or number to a bunyan number, or undefined when invalid. */
function resolveLevel (level) {
  if (typeof level === 'number' && Number.isInteger(level) && level > 0) return level
  if (typeof level === 'string' && Object.hasOwn(LEVELS, level.toLowerCase())) return LEVELS[level.toLowerCase()]
  return undefined
}

class Logger {
  /**
   * @param {object} opts
   * @param {string} opts.name record `name`
   * @param {number} opts.level bunyan level number
   * @param {Array<{write(s: string): any}>} opts.streams where records go (empty: logging off)
   * @param {object} [opts.fields] extra fields on every record (e.g. component)
   */
  constructor ({ name, level, streams, fields = {} }) {
    this.name = name
    this.streams = streams.map((stream) => ({ stream, level }))
    this.fields = fields
    this.hostname = os.hostname()
  }

  /** A logger writing to the same streams with extra fields (bunyan's `child`). */
  child (fields) {
    const c = Object.create(Logger.prototype)
    c.name = this.name
    c.hostname = this.hostname
    c.fields = { ...this.fields, ...fields }
    c.streams = this.streams.map((s) => ({ stream: s.stream, level: s.level }))
    return c
  }

  /** Levels, one per stream (bunyan's `levels()`); with a level, sets every stream. */
  levels (level) {
    if (level !== undefined) for (const s of this.streams) s.level = level
    return this.streams.map((s) => s.level)
  }

  /** Lowest level any stream writes (Infinity when logging is off). */
  minLevel () {
    return this.streams.reduce((m, s) => Math.min(m, s.level), Infinity)
  }

  enabled (level) {
    return this.streams.some((s) => level >= s.level)
  }

  /** Writes whatever the streams' levels (for warnings about the logging setup itself). */
  force (level, msg, extra) {
    this.write(level, msg, extra, true)
  }

  write (level, msg, extra, force = false) {
    if (!force && !this.enabled(level)) return
    let fields = extra
    let text = msg
    if (msg instanceof Error) {
      fields = { ...extra, err: { message: msg.message, name: msg.name, code: msg.code, stack: msg.stack } }
      text = msg.message
    }
    const rec = {
      name: this.name,
      hostname: this.hostname,
      pid: process.pid,
      ...this.fields,
      ...fields,
      level,
      msg: String(text),
      time: new Date().toISOString(),
      v: 0
    }
    let line
    try {
      line = JSON.stringify(rec, (k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n'
    } catch (err) {
      // The caller's fields cannot be serialized (circular, a throwing toJSON):
      // keep the record, without them. Spreading `rec` again would throw again.
      line = JSON.stringify({
        name: this.name,
        hostname: this.hostname,
        pid: process.pid,
        level,
        msg: String(text),
        time: rec.time,
        v: 0,
        logError: `fields dropped: ${err && err.message}`
      }) + '\n'
    }
    for (const s of this.streams) if (force || level >= s.level) s.stream.write(line)
  }
}

for (const [name, level] of Object.entries(LEVELS)) {
  Logger.prototype[name] = function (msg, extra) { this.write(level, msg, extra) }
}

module.exports = { Logger, LEVELS, resolveLevel }
