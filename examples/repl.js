'use strict'
// A node with the TCP REPL enabled. In another terminal:
//   telnet localhost <port>     (or: nc localhost <port>)
//   eventcast@host> ec.emit('hello', 'from the repl')
//   eventcast@host> ec.stats()
//   eventcast@host> ec.stop(); ec.start()   (the REPL outlives stop(), as in 0.1.x)
// Ctrl-C stops it and closes the REPL. Pass a seconds argument to do that automatically:
//   node examples/repl.js 10
const Eventcast = require('..')

const ec = Eventcast({ port: 9000, replEnabled: true, replPort: Number(process.env.REPL_PORT) || 9001, log: true, logLevel: 'info' })
ec.on('hello', (...args) => console.log('hello', ...args))
ec.on('replConnected', (c) => console.log(`REPL client ${c.address}:${c.port} connected (${ec.clients()} now)`))
ec.on('replDisconnected', (c) => console.log(`REPL client ${c.address}:${c.port} left`))
ec.start(() => {
  console.log(`REPL on ${ec.config.replHost}:${ec.config.replPort}: telnet localhost ${ec.config.replPort}`)
})
// The REPL keeps the process alive after stop(): close it too to exit.
const quit = () => Promise.all([ec.stop(), ec.closeRepl()])
process.on('SIGINT', quit)
const seconds = Number(process.argv[2])
if (seconds > 0) setTimeout(quit, seconds * 1000)
