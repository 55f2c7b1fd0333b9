'use strict'
// A node with the TCP REPL enabled. In another terminal:
//   telnet localhost <port>     (or: nc localhost <port>)
//   eventcast@host> ec.emit('hello', 'from the repl')
//   eventcast@host> ec.stats()
// Ctrl-C stops it. Pass a seconds argument to stop automatically:
//   node examples/repl.js 10
const Eventcast = require('..')

const ec = Eventcast({ port: 9000, replEnabled: true, replPort: Number(process.env.REPL_PORT) || 9001, log: true, logLevel: 'info' })
ec.on('hello', (...args) => console.log('hello', ...args))
ec.on('replConnected', (c) => console.log(`REPL client ${c.address}:${c.port} connected (${ec.clients()} now)`))
ec.on('replDisconnected', (c) => console.log(`REPL client ${c.address}:${c.port} left`))
ec.start(() => {
  console.log(`REPL on ${ec.config.replHost}:${ec.config.replPort}: telnet localhost ${ec.config.replPort}`)
})
process.on('SIGINT', () => ec.stop())
const seconds = Number(process.argv[2])
if (seconds > 0) setTimeout(() => ec.stop(), seconds * 1000)
