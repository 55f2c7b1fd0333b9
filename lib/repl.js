'use strict'
// The TCP REPL of 0.1.x: `telnet localhost <replPort>` gives a Node REPL with
// the instance in scope as `eventcast` and `ec`.
const net = require('node:net')
const os = require('node:os')
const repl = require('node:repl')

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', 'ip6-localhost'])

function isLoopback (host) {
  return LOOPBACK.has(host) || /^127\./.test(host)
}

class ReplServer {
  /**
   * @param {object} ec the Eventcast instance (in scope as `eventcast` and `ec`)
   * @param {{host: string, port: number, log: object, emit: Function}} opts
   */
  constructor (ec, { host, port, log, emit }) {
    this.ec = ec
    this.host = host
    this.port = port
    this.log = log
    this.emitLocal = emit
    this.sockets = new Set()
    this.server = null
    this.listening = null
  }

  /** Listens; resolves once bound (rejects on listen errors). */
  listen () {
    if (!isLoopback(this.host)) {
      // Shown whatever the log level (and as a process warning when logging is off).
      const msg = `REPL bound to non-loopback host ${this.host}: anyone who can reach ${this.host}:${this.port} gets a JavaScript shell that runs arbitrary code in this process, with no authentication. Use replHost 'localhost' unless that network is fully trusted.`
      if (this.log.streams.length) this.log.force(40, msg, { host: this.host, port: this.port })
      else process.emitWarning(msg, { code: 'EVENTCAST_REPL_EXPOSED' })
    }
    const server = net.createServer((socket) => this._session(socket))
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

  _session (socket) {
    this.sockets.add(socket)
    const client = { address: socket.remoteAddress, port: socket.remotePort }
    this.log.info(`REPL client connected from ${client.address}:${client.port}`, client)
    // Before repl.start(): a client that resets at once must not be an uncaught error.
    socket.on('error', (err) => this.log.debug(`REPL client error: ${err.message}`))
    const r = repl.start({
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
