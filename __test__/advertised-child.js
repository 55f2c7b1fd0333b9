'use strict'
// Runs inside a fresh network namespace (see boundary.test.js) whose `lo` also
// carries 10.77.0.1 and 10.77.0.2: starts nodes with different `address` /
// `multicastInterface` settings, captures one datagram of each from the group,
// and prints, per case, what getAddress() said and what the meta carried.
const dgram = require('node:dgram')
const Eventcast = require('..')
const { once } = require('node:events')
// Not helpers.js: it loads node:test, whose report would mix into our stdout.
const { inPrivateNetns } = require('../scripts/netns.js')

/** `host` and `port` of a BSON meta document (a flat walk over its top-level elements). */
function hostAndPort (meta) {
  const out = {}
  let i = 4
  while (i < meta.length - 1) {
    const type = meta[i++]
    const end = meta.indexOf(0, i)
    const key = meta.toString('utf8', i, end)
    i = end + 1
    let size
    switch (type) {
      case 0x02: { // string
        const n = meta.readInt32LE(i)
        if (key === 'host') out.host = meta.toString('utf8', i + 4, i + 3 + n)
        size = 4 + n
        break
      }
      case 0x10: // int32
        if (key === 'port') out.port = meta.readInt32LE(i)
        size = 4
        break
      case 0x01: case 0x09: case 0x11: case 0x12: size = 8; break
      case 0x08: size = 1; break
      case 0x0a: size = 0; break
      case 0x03: case 0x04: size = meta.readInt32LE(i); break
      case 0x05: size = 5 + meta.readInt32LE(i); break
      default: throw new Error(`meta element type ${type} (${key}) not handled by this test`)
    }
    i += size
  }
  return out
}

async function one (opts) {
  const group = '239.255.77.1'
  const port = 20000 + Math.floor(Math.random() * 20000)
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(port, resolve))
  sock.addMembership(group, opts.multicastInterface || '10.77.0.1')
  const ec = Eventcast({ port, multicastMembership: group, ...opts })
  const stopped = ec.getAddress()
  await ec.start()
  const started = ec.getAddress()
  const got = once(sock, 'message', { signal: AbortSignal.timeout(5000) })
  ec.emit('probe', 1)
  const [msg] = await got
  const meta = hostAndPort(msg.subarray(2, 2 + msg.readUInt16BE(0))) // 2-byte length, then the meta
  await ec.stop()
  sock.close()
  return { opts, port, stopped, started, meta }
}

async function main () {
  if (!inPrivateNetns()) throw new Error('refusing to open sockets outside a private network namespace')
  const cases = [
    {},
    { address: '10.77.0.2' },
    { multicastInterface: '10.77.0.2' },
    { address: '10.77.0.1', multicastInterface: '10.77.0.2' }
  ]
  for (const opts of cases) console.log(JSON.stringify(await one(opts)))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
