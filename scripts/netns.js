#!/usr/bin/env node
'use strict'
// Runs a command inside a private network namespace (only loopback, with the
// multicast range routed to it), so demos and tests never send a datagram to
// a real network. Usage: node scripts/netns.js CMD [ARGS...]
// Already inside one (the only interface is `lo`)? Runs CMD directly.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')

/** Network interfaces of this process's namespace (from /proc/self/net/dev). */
function interfaces () {
  try {
    return fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2)
      .map((l) => l.split(':')[0].trim()).filter(Boolean)
  } catch {
    return null
  }
}

/** True when this process sits in a namespace whose only interface is loopback. */
function inPrivateNetns () {
  const ifs = interfaces()
  return Array.isArray(ifs) && ifs.length === 1 && ifs[0] === 'lo'
}

// IPv6 multicast on loopback needs the range as a *local* route: a plain
// `ff00::/8 dev lo` route would become a reject route (the kernel does that to
// routes through loopback). Best effort: a kernel without IPv6 skips it.
const SETUP = 'ip link set lo up && (ip route add 224.0.0.0/4 dev lo 2>/dev/null || true)' +
  ' && (ip -6 route add local ff00::/8 dev lo table local 2>/dev/null || true)'

/** Runs argv inside a private namespace (entering one when needed); returns the exit code. */
function runInNetns (argv, opts = {}) {
  let r
  if (inPrivateNetns()) {
    r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', ...opts })
  } else {
    r = spawnSync('unshare', ['-n', 'sh', '-c', `${SETUP} && exec "$@"`, 'sh', ...argv], { stdio: 'inherit', ...opts })
    if (r.error && r.error.code === 'ENOENT') {
      console.error('[eventcast] `unshare` (util-linux) is needed to run in a private network namespace')
      return 1
    }
  }
  if (r.error) {
    console.error(`[eventcast] ${r.error.message}`)
    return 1
  }
  if (r.status === null) {
    console.error(`[eventcast] ${argv.join(' ')} killed by ${r.signal}`)
    return 1
  }
  return r.status
}

module.exports = { inPrivateNetns, runInNetns, interfaces }

if (require.main === module) {
  const argv = process.argv.slice(2)
  if (argv.length === 0) {
    console.error('usage: node scripts/netns.js CMD [ARGS...]')
    process.exit(2)
  }
  process.exit(runInNetns(argv))
}
