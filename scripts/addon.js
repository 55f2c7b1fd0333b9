'use strict'
// Which native addon the generated loader (binding.js) loads on this machine.
// The loader owns platform/libc detection and the search order (a `.node` file
// next to it, then the `eventcast-<platform>` package); we only ask it, in a
// child process so a broken addon cannot take the caller down.
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

const PROBE = `
const b = require(process.argv[1])
b.encodePayload([])
const file = Object.keys(require.cache).find((k) => k.endsWith('.node'))
process.stdout.write(JSON.stringify({ file }))
`

/**
 * The absolute path of the `.node` file binding.js loads (and that answers a
 * call), or null with the loader's error in `error` when none loads.
 */
function probeAddon (dir = root) {
  const r = spawnSync(process.execPath, ['-e', PROBE, path.join(dir, 'binding.js')], { stdio: 'pipe', encoding: 'utf8' })
  if (r.status === 0) {
    try {
      return { file: JSON.parse(r.stdout).file || null, error: null }
    } catch {}
  }
  const lines = String(r.stderr || r.error || '').split('\n').filter((l) => /Error|Cannot/.test(l))
  return { file: null, error: lines.slice(0, 3).join('\n') || `exit ${r.status}` }
}

/** The path of the addon binding.js loads, or null. */
const addonPath = (dir) => probeAddon(dir).file

module.exports = { probeAddon, addonPath }
