'use strict'
// The TCP REPL of 0.1.x: `telnet localhost <replPort>` gives a Node REPL with
// the instance in scope as `eventcast` and `ec`.
const net = require('node:net')
const os = require('node:os')
// node:repl is required only when a REPL opens: it loads node:domain, which
// replaces EventEmitter.prototype.emit for the whole process.
let replModule = null

/** Refusals of connections over the cap are logged at most this often (a connect flood must not flood the log). */
const REFUSAL_LOG_INTERVAL_MS = 1000

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', 'ip6-localhost'])

function isLoopback (host) {
  return LOOPBACK.has(host) || /^127\./.test(host)
}

class ReplServer {
  /**
   * @param {object} ec the Eventcast instance (in scope as `eventcast` and `ec`)
   * @param {{host: string, port: number, maxClients: number, idleTimeout: number, log: object, emit: Function}} opts
   *   maxClients: sessions at once (more are refused and counted);
   *   idleTimeout: ms without input after which a session is closed
   */
  constructor (ec, { host, port, maxClients, idleTimeout, log, emit }) {
    this.ec = ec
    this.host = host
    this.port = port
    this.maxClients = maxClients
    this.idleTimeout = idleTimeout
    this.log = log
    this.emitLocal = emit
    this.sockets = new Set()
    this.server = null
    this.listening = null
    this.refused = 0 // connections refused because maxClients were connected
    this.idleClosed = 0 // sessions closed after idleTimeout without input
    this.lastRefusalLog = -Infinity
  }

  /** Listens; resolves once bound (rejects on listen errors). */
  listen () {
    if (!isLoopback(this.host)) {
      // Shown whatever the log level (and as a process warning when logging is off).
      const msg = `REPL bound to non-loopback host ${this.host}: anyone who can reach ${this.host}:${this.port} gets a JavaScript shell that runs arbitrary code in this process, with no authentication. Use replHost 'localhost' unless that network is fully trusted.`
      if (this.log.streams.length) this.log.force(40, msg, { host: this.host, port: this.port })
      else process.emitWarning(msg, { code: 'EVENTCAST_REPL_EXPOSED' })
    }
    if (replModule === null) replModule = require('node:repl')
    const server = net.createServer((socket) => this._connection(socket))
    this.server = server
    this.listening = new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, this.host, () => {
        server.off('error', reject)
        server.on('error', (err) => this.log.error(err))
        this.log.info(`REPL listening on ${this.host}:${this.port}`, { host: this.host, port: this.port })
        resolve()
      })
    })
    return this.listening
  }

  /** A new connection: a session, or refused (counted, logged) when maxClients are connected. */
  _connection (socket) {
    if (this.sockets.size >= this.maxClients) {
      this.refused++
      socket.on('error', () => {})
      socket.destroy()
      const now = Date.now()
      if (now - this.lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
        this.lastRefusalLog = now
        this.log.warn(`REPL connection from ${socket.remoteAddress}:${socket.remotePort} refused: ${this.maxClients} clients connected (replMaxClients); refused so far: ${this.refused}`,
          { address: socket.remoteAddress, port: socket.remotePort, refused: this.refused })
      }
      return
    }
    this._session(socket)
  }

  _session (socket) {
    this.sockets.add(socket)
    const client = { address: socket.remoteAddress, port: socket.remotePort }
    // A session that sends nothing for idleTimeout is closed: forgotten or
    // abandoned connections must not hold a slot (and its memory) for ever.
    socket.setTimeout(this.idleTimeout, () => {
      this.idleClosed++
      this.log.info(`REPL client ${client.address}:${client.port} idle for ${this.idleTimeout} ms (replIdleTimeout): closed`, client)
      socket.end(`\nidle for ${this.idleTimeout} ms (replIdleTimeout): closing\n`, () => socket.destroy())
    })
    this.log.info(`REPL client connected from ${client.address}:${client.port}`, client)
    // Before repl.start(): a client that resets at once must not be an uncaught error.
    socket.on('error', (err) => this.log.debug(`REPL client error: ${err.message}`))
    const r = replModule.start({
      prompt: `eventcast@${os.hostname()}> `,
      input: socket,
      output: socket,
      terminal: false,
      useGlobal: false
    })
    r.context.eventcast = this.ec
    r.context.ec = this.ec
    r.on('exit', () => socket.end())
    // readline forwards its input's errors to the REPL: already logged above.
    r.on('error', () => {})
    socket.once('close', () => {
      this.sockets.delete(socket)
      r.close()
      this.log.info(`REPL client disconnected ${client.address}:${client.port}`, client)
      this.emitLocal('replDisconnected', client)
    })
    this.emitLocal('replConnected', client)
  }

  clients () {
    return this.sockets.size
  }

  /** `{clients, refused, idleClosed}`: sessions now, connections refused over the cap, sessions closed idle. */
  stats () {
    return { clients: this.sockets.size, refused: this.refused, idleClosed: this.idleClosed }
  }

  /** Closes the server and every client; resolves when closed. */
  async close () {
    const server = this.server
    this.server = null
    if (!server) return
    // Called right after listen() (the constructor opens the REPL): the bind
    // is still under way and would complete after a close() now.
    await this.listening.catch(() => {})
    for (const s of this.sockets) s.destroy()
    await new Promise((resolve) => server.close(() => resolve()))
  }
}

module.exports = { ReplServer, isLoopback }
