'use strict'
// What the package tests share (__test__/package.test.js and the long
// package-source-build.test.js): the tarballs packed by scripts/pack.js into a
// temporary directory (removed after the tests), fresh user projects that
// install them offline, and two processes that exchange an event through them.
// See package.test.js for why the installs are offline and how the platform
// package is served.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')
const { requireNetns, root, port } = require('./helpers.js')

requireNetns()

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eventcast-package-'))
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }))

// The environment of a user's shell: none of `npm test`'s npm_* settings.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
baseEnv.npm_config_update_notifier = 'false'
const hasTool = (dir, name) => fs.existsSync(path.join(dir, name))
const noRustPath = process.env.PATH.split(path.delimiter)
  .filter((d) => d && !hasTool(d, 'cargo') && !hasTool(d, 'rustc')).join(path.delimiter)
const noRustEnv = { ...baseEnv, PATH: noRustPath }

// pnpm 10 comes as a devDependency (its package exports no package.json to resolve).
const pnpmCli = [path.join(root, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs')].find((f) => fs.existsSync(f)) || null

function sh (cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
  if (r.error) throw r.error
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` }
}

const packed = (() => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'pack.js'), '--out', path.join(tmp, 'dist'), '--json'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`scripts/pack.js failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
})()
const [plat] = packed.platform
const addonFile = plat.files.find((f) => f.endsWith('.node'))
const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
const builtSha = sha(path.join(root, addonFile))

/** A fresh project directory; `overrides` serves the platform package from its tarball. */
function project (name, { overridePlatform = true, pnpm = false } = {}) {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  const manifest = { name: `app-${name}`, version: '1.0.0', private: true }
  const overrides = { [plat.name]: `file:${plat.file}` }
  if (overridePlatform) {
    if (pnpm) manifest.pnpm = { overrides }
    else manifest.overrides = overrides
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2))
  fs.writeFileSync(path.join(dir, 'peer.js'), PEER)
  return dir
}

function npmInstall (dir, extra, env) {
  return sh('npm', ['install', '--offline', '--cache', path.join(dir, '.npm-cache'), '--no-audit', '--no-fund', ...extra, packed.main.file], { cwd: dir, env })
}

/** What an install left in the main package: no addon, no build tree, only the packed files. */
function assertNothingBuilt (dir) {
  const pkg = path.join(dir, 'node_modules', 'eventcast')
  assert.ok(fs.existsSync(path.join(pkg, 'package.json')), 'eventcast installed')
  assert.ok(!fs.existsSync(path.join(pkg, 'target')), 'no target/ in the installed package')
  assert.deepEqual(fs.readdirSync(pkg).filter((f) => f.endsWith('.node')), [], 'no addon built into the main package')
}

// Run in a project: requires the installed package, reports which addon file
// it loaded, and either waits for one 'greeting' (receiver) or emits it (sender).
const PEER = `'use strict'
const Eventcast = require('eventcast')
const addon = Object.keys(require.cache).find((k) => k.endsWith('.node'))
const [role, port] = process.argv.slice(2)
const ec = Eventcast({ port: Number(port) })
if (role === 'receiver') {
  ec.on('greeting', (text, data) => {
    console.log(JSON.stringify({ text, data, addon }))
    ec.stop(() => process.exit(0))
  })
  ec.start((err) => { if (err) throw err; console.log(JSON.stringify({ ready: true, addon })) })
} else {
  ec.start((err) => { if (err) throw err; ec.emit('greeting', 'hello from ' + role, { n: 42 }) })
}
`

/** Two processes, one per project, exchange an event; resolves with what the receiver got. */
function exchange (receiverDir, senderDir) {
  const p = port()
  return new Promise((resolve, reject) => {
    const receiver = spawn(process.execPath, ['peer.js', 'receiver', String(p)], { cwd: receiverDir, env: noRustEnv, stdio: ['ignore', 'pipe', 'inherit'] })
    let sender = null
    let buf = ''
    const lines = []
    const guard = setTimeout(() => { receiver.kill(); reject(new Error(`no event within 10 s: ${JSON.stringify(lines)}`)) }, 10000)
    receiver.stdout.on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i))
        buf = buf.slice(i + 1)
        lines.push(msg)
        if (msg.ready) sender = spawn(process.execPath, ['peer.js', 'sender', String(p)], { cwd: senderDir, env: noRustEnv, stdio: 'inherit' })
      }
    })
    receiver.on('exit', (code) => {
      clearTimeout(guard)
      if (sender) sender.kill()
      if (code === 0 && lines.length === 2) resolve(lines)
      else reject(new Error(`receiver exited with ${code}: ${JSON.stringify(lines)}`))
    })
  })
}

/** The receiver's report: it got the event, through the addon of the platform package. */
function assertExchanged (lines, receiverDir) {
  const [ready, got] = lines
  assert.deepEqual({ text: got.text, data: got.data }, { text: 'hello from sender', data: { n: 42 } })
  assert.ok(ready.addon.includes(`${path.sep}${plat.name}${path.sep}`), `addon loaded from the ${plat.name} package: ${ready.addon}`)
  assert.ok(ready.addon.startsWith(fs.realpathSync(receiverDir)), ready.addon)
  assert.equal(sha(ready.addon), builtSha, 'the addon loaded is the one packed')
}

module.exports = { tmp, baseEnv, noRustEnv, pnpmCli, sh, packed, plat, addonFile, sha, builtSha, project, npmInstall, assertNothingBuilt, exchange, assertExchanged }
