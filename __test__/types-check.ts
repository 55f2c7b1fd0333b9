// Compiled (not run) by types.test.js: index.d.ts must accept these and reject the @ts-expect-error lines.
import Eventcast = require('..')
import { once } from 'node:events'

const a = Eventcast(9000)
const b = new Eventcast({ port: 9000, encrypt: { key: 'k', legacy: true }, logLevel: 'debug' })
const id: string = a.id
const st: 'stopped' | 'starting' | 'started' | 'stopping' = a.status
const port: number = a.config.port
a.on('anything', (x: unknown) => {})
a.emit('anything', 1, 'two', { three: [3] }, new Date(), /re/g, Buffer.from('x'), 5n, null)
a.start(() => {}).stop(() => {})
async function f () {
  await a.start()
  await a.stop()
  const levels: number[] = a.logLevel('repl', 'info')
  const s = a.stats().eventsDelivered + Eventcast.getRandomPort() + Eventcast.protocolVersion
  const [x] = await once(a, 'x')
}
const t = Eventcast<{ chat: [from: string, text: string]; tick: [n: number] }>(9000)
t.on('chat', (from, text) => { const u: string = from + text })
t.on('tick', (n) => { const m: number = n })
t.emit('tick', 1)
t.on('error', (err) => { const c: string = err.code })
t.on('gap', (g) => { const c: number = g.count })
// @ts-expect-error wrong argument type for a typed event
t.emit('tick', 'one')
// @ts-expect-error wrong listener parameter type
t.on('chat', (from: number) => {})
// @ts-expect-error options type
Eventcast({ port: '9000' })
const paired = Eventcast({ port: 9000, transport: 'nats://h:4222', encrypt: { key: 'k' }, nats: { group: '239.1.2.3' } })
const pairedGroup: string | undefined = paired.config.nats?.group
// @ts-expect-error nats.group is an address string
Eventcast({ port: 9000, transport: 'nats://h:4222', nats: { group: 239 } })
const u: Eventcast = b
const r = Eventcast({ port: 9000, replEnabled: true, replMaxClients: 4, replIdleTimeout: 60000 })
const rs: number = r.replStats().refused + r.replStats().idleClosed + r.replStats().clients + r.config.replMaxClients
// @ts-expect-error replMaxClients is a number
Eventcast({ port: 9000, replMaxClients: '4' })
const v6 = Eventcast({ port: 9000, multicastMembership: 'ff12::ec:1', multicastInterface: 'eth0' })
const v6If: string | number | undefined = v6.config.multicastInterface
Eventcast({ port: 9000, multicastMembership: 'ff15::ec:1', multicastInterface: 2 })
const host: string = v6.getAddress().host
// @ts-expect-error multicastInterface is a name, an address or an index
Eventcast({ port: 9000, multicastInterface: true })
import { EventEmitter, on } from 'node:events'
const asEE: EventEmitter = a
async function g () { for await (const [v] of on(t, 'tick')) { break } }
