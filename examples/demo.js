'use strict'
// Two eventcast nodes in two processes, like 0.1.x's example/ folder:
// alice and bob join the same multicast group and talk both ways, then stop
// and exit by themselves. Run with `npm run demo` (which uses a private
// network namespace when it can) or `node examples/demo.js`.
const { fork } = require('node:child_process')
const Eventcast = require('..')

const role = process.argv[2]

if (!role) {
  const port = Eventcast.getRandomPort()
  console.log(`eventcast demo: two nodes on 224.0.0.1:${port} (protocol v${Eventcast.protocolVersion})`)
  const bob = fork(__filename, ['bob', String(port)])
  bob.once('message', () => {
    // bob is listening: start alice.
    const alice = fork(__filename, ['alice', String(port)])
    alice.on('exit', (code) => { if (code) process.exitCode = code })
  })
  bob.on('exit', (code) => {
    if (code) process.exitCode = code
  })
  const guard = setTimeout(() => {
    console.error('demo: timed out')
    process.exit(1)
  }, 15000)
  guard.unref()
  return
}

const port = Number(process.argv[3])
const ec = Eventcast({ port })
const say = (msg) => console.log(`[${role} ${ec.id.slice(0, 6)}] ${msg}`)

if (role === 'bob') {
  ec.on('greeting', (text, from) => {
    say(`received greeting(${JSON.stringify(text)}, ${JSON.stringify(from)})`)
    say('emitting reply')
    ec.emit('reply', `hi ${from.name}, bob here`, { at: new Date(), luckyNumbers: [7, 42] })
  })
  ec.on('bye', async () => {
    say('received bye; stopping')
    await ec.stop()
  })
  ec.start(() => {
    say(`started, listening on ${ec.getAddress().host}:${ec.getAddress().port}`)
    process.send('ready')
  })
} else {
  let replies = 0
  ec.on('reply', (text, data) => {
    replies++
    say(`received reply(${JSON.stringify(text)}, at=${data.at.toISOString()}, luckyNumbers=${data.luckyNumbers})`)
    if (replies < 3) {
      ec.emit('greeting', `hello #${replies + 1}`, { name: 'alice' })
    } else {
      say('emitting bye; stopping')
      ec.emit('bye')
      ec.stop(() => say('stopped'))
    }
  })
  ec.start((err) => {
    if (err) throw err
    say('started; emitting greeting')
    ec.emit('greeting', 'hello #1', { name: 'alice' })
  })
}
ec.on('stop', () => { if (role === 'bob') say('stopped') })
