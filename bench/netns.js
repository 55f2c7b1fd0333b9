'use strict'
// The bench peers' guard: never open a socket outside a private network
// namespace (one whose only interface is `lo`); this machine's default route
// may lead to a real LAN. `npm run bench` enters one by itself.
const fs = require('node:fs')

function ensurePrivateNetns (who) {
  const ifs = fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
    .map((l) => l.split(':')[0].trim()).filter(Boolean)
  if (ifs.length !== 1 || ifs[0] !== 'lo') {
    process.stderr.write(`${who}: refusing to run outside a private network namespace (interfaces: ${ifs.join(',')}); use npm run bench\n`)
    process.exit(2)
  }
}

module.exports = { ensurePrivateNetns }
