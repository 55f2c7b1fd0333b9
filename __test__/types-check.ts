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
// presence: options, peers(), setMeta(), the peer events
const pr = Eventcast({ port: 9000, name: 'pricing-1', meta: { role: 'pricing', http: 8080, tags: ['a'] }, presence: { interval: 500, timeout: 2500, maxPeers: 64 } })
const off = Eventcast({ port: 9000, presence: false })
const peersNow: Eventcast.Peer[] = pr.peers()
const pricing: string[] = pr.peers().filter((p) => p.meta.role === 'pricing').map((p) => `${p.host}:${p.port} ${p.name ?? '0.1.x'} ${p.pid} ${p.since} ${p.lastSeen} ${p.stats.eventsSent} ${p.delivered} ${p.gaps}`)
const chained: Eventcast = pr.setMeta({ role: 'pricing', draining: true })
pr.on('peerUp', (p) => { const t: 'udp' | 'nats' = p.transport; const b: boolean = p.bridged || p.legacy })
pr.on('peerDown', (p) => { const why: 'goodbye' | 'timeout' | 'evicted' = p.reason })
pr.on('peerUpdate', (p) => { const v: string | null = p.version })
const presenceConfig: false | { readonly interval: number } = off.config.presence
const beacons: number = pr.stats().beaconsSent + pr.stats().beaconsReceived + pr.stats().peersKnown + pr.stats().peersEvicted
// @ts-expect-error meta holds JSON values only
pr.setMeta({ f: () => 1 })
// @ts-expect-error presence.interval is a number
Eventcast({ port: 9000, presence: { interval: '1s' } })
// @ts-expect-error a peerDown reason is one of three
pr.on('peerDown', (p) => { const why: 'crash' = p.reason })
// request/reply: typed requests and results, gather replies, per-call timeout
type Asks = { sum: [[number, number], number], whoami: [[], string] }
const rr = Eventcast<{}, Asks>({ port: 9000, requestTimeout: 500 })
rr.handle('sum', (x, y) => x + y)
rr.handle('whoami', async () => 'me')
async function asks () {
  const n: number = await rr.request('sum', 1, 2)
  const all: Array<Eventcast.GatherReply<string>> = await rr.gather('whoami')
  for (const r of all) { if (r.error) { const c: string = r.error.code } else { const s: string = r.value } }
  const quick: number = await rr.timeout(100).request('sum', 3, 4)
  const free: any = await rr.request('untyped', { any: 'thing' })
  const gone: boolean = rr.unhandle('sum')
  const sent: number = rr.stats().requestsSent + rr.stats().repliesUnmatched
  const t: number = rr.config.requestTimeout
}
// @ts-expect-error a typed request takes its arguments
rr.request('sum', 'a', 'b')
// @ts-expect-error a typed handler returns its result type
rr.handle('sum', () => 'not a number')
// @ts-expect-error requestTimeout is a number
Eventcast({ port: 9000, requestTimeout: '1s' })
// pattern listeners: typed name and free arguments, chainable, misuse rejected
const pl = (name: string, ...args: any[]) => { const n: string = name }
const patternChain: Eventcast = a.onPattern('orders.*.created', pl).onAny((name) => { const s: string = name.toUpperCase() }).offPattern('orders.*.created', pl).offPattern('orders.>').offAny(pl).offAny()
t.onPattern('tick.>', (name, n) => { const s: string = name })
// @ts-expect-error the pattern is a string
a.onPattern(5, pl)
// @ts-expect-error the listener takes the name first, a string
a.onAny((name: number) => {})
// @ts-expect-error onAny takes only a listener
a.onAny('x', pl)
