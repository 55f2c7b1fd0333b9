'use strict'
// Issue 13: what a user gets from the published tarballs. scripts/pack.js packs
// this machine's platform package (eventcast-<platform>, the addon built here)
// and the main package exactly as the release publishes them; then each test
// installs them into a fresh directory, the way a user's project would.
//
// The registry is out of reach (npm test runs with no network at all), so each
// install is offline with an empty cache, and the one thing the registry would
// have served, the platform package that the main package lists in its
// optionalDependencies, comes from its tarball through an override
// (`overrides` for npm, `pnpm.overrides` for pnpm). The project itself depends
// on `eventcast` only: the platform package arrives because the main package
// asks for it, and binding.js finds it as a package, as after a registry install.
// Other platforms' packages cannot be fetched offline and are skipped, as
// optional dependencies that do not match os/cpu/libc are for a user.
//
// "Nothing is compiled": these installs run with no cargo/rustc on PATH, and
// the test checks that the main package holds no addon and no target/ after
// them, and that the addon loaded is byte for byte the one packed.
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

test('the tarballs hold only what the package needs', (t) => {
  t.diagnostic(`${path.basename(packed.main.file)}: ${packed.main.size} bytes (${packed.main.unpackedSize} unpacked, ${packed.main.files.length} files)`)
  t.diagnostic(`${path.basename(plat.file)}: ${plat.size} bytes (${plat.unpackedSize} unpacked)`)
  const stray = packed.main.files.filter((f) => /^(__test__|tests?|bench|benches|fuzz|target|examples|npm|\.ci|\.github)\//.test(f) || /\.(node|tgz)$/.test(f))
  assert.deepEqual(stray, [], 'no test, bench, fuzz, target or addon files in the main package')
  for (const f of ['index.js', 'binding.js', 'index.d.ts', 'scripts/install.js', 'scripts/addon.js', 'Cargo.toml', 'Cargo.lock', 'build.rs', 'src/lib.rs']) {
    assert.ok(packed.main.files.includes(f), `main package ships ${f}`)
  }
  assert.deepEqual([...plat.files].sort(), ['README.md', addonFile, 'package.json'])
  const name = (f) => path.basename(f)
  assert.equal(name(packed.main.file), `eventcast-${packed.main.version}.tgz`)
  assert.equal(name(plat.file), `${plat.name}-${plat.version}.tgz`)
})

test('optionalDependencies name every napi target\'s package, pinned to this version', () => {
  const pkg = require(path.join(root, 'package.json'))
  const dirs = fs.readdirSync(path.join(root, 'npm')).sort()
  assert.equal(dirs.length, pkg.napi.targets.length, 'one npm/<platform> per napi target')
  const expected = {}
  for (const dir of dirs) {
    const sub = require(path.join(root, 'npm', dir, 'package.json'))
    assert.equal(sub.name, `eventcast-${dir}`)
    assert.equal(sub.version, pkg.version, `${sub.name} has the main package's version`)
    assert.equal(sub.main, `eventcast.${dir}.node`)
    assert.deepEqual(sub.files, [sub.main])
    assert.ok(sub.os && sub.os.length === 1 && sub.cpu && sub.cpu.length === 1, `${sub.name} sets os and cpu`)
    if (sub.os[0] === 'linux') assert.deepEqual(sub.libc, [dir.endsWith('musl') ? 'musl' : 'glibc'])
    expected[sub.name] = pkg.version
  }
  assert.deepEqual(pkg.optionalDependencies, expected)
})

test('the source fallback names the .node as @napi-rs/cli does, for every target', async () => {
  const { parseTriple } = await import('@napi-rs/cli')
  const { napiSuffix } = require('../scripts/install.js')
  const { napi } = require(path.join(root, 'package.json'))
  const extra = ['i686-pc-windows-msvc', 'aarch64-pc-windows-msvc', 'x86_64-unknown-freebsd', 'armv7-unknown-linux-gnueabihf', 'riscv64gc-unknown-linux-gnu', 'powerpc64le-unknown-linux-gnu', 's390x-unknown-linux-gnu', 'loongarch64-unknown-linux-gnu']
  for (const triple of [...napi.targets, ...extra]) {
    assert.equal(napiSuffix(triple), parseTriple(triple).platformArchABI, triple)
  }
})

test('npm install --ignore-scripts, no Rust: the platform package gives a working eventcast', async () => {
  assert.equal(spawnSync('cargo', ['--version'], { env: noRustEnv }).error?.code, 'ENOENT', 'cargo is not on PATH')
  const dir = project('npm-ignore-scripts')
  const r = npmInstall(dir, ['--ignore-scripts'], noRustEnv)
  assert.equal(r.code, 0, r.out)
  assertNothingBuilt(dir)
  assertExchanged(await exchange(dir, dir), dir)
})

test('npm install with scripts, no Rust: the install script finds the prebuilt addon and builds nothing', async () => {
  const dir = project('npm-scripts')
  const r = npmInstall(dir, ['--foreground-scripts'], noRustEnv)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, new RegExp(`addon found, nothing to build: \\.\\./${plat.name}/${addonFile.replace(/\./g, '\\.')}`))
  assert.doesNotMatch(r.out, /building it from source/)
  assertNothingBuilt(dir)
  assertExchanged(await exchange(dir, dir), dir)
})

test('pnpm 10 (default settings: dependency scripts skipped), no Rust: a working eventcast', { skip: !pnpmCli && 'pnpm is not installed (devDependency `pnpm`: run npm install)' }, async () => {
  const dir = project('pnpm', { pnpm: true })
  const version = sh(process.execPath, [pnpmCli, '--version'], { env: noRustEnv }).out.trim()
  assert.match(version, /^10\./)
  const r = sh(process.execPath, [pnpmCli, 'add', '--offline', '--store-dir', path.join(dir, '.pnpm-store'), packed.main.file], { cwd: dir, env: { ...noRustEnv, CI: '' } })
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /Ignored build scripts: eventcast/, 'pnpm 10 did not run the install script')
  assertNothingBuilt(dir)
  // pnpm's strict layout: the platform package is reachable only as eventcast's own dependency.
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', plat.name)))
  assertExchanged(await exchange(dir, dir), dir)
})

test('across installs: a pnpm-installed node hears an npm-installed one', async (t) => {
  const [pnpmDir, npmDir] = ['pnpm', 'npm-ignore-scripts'].map((d) => path.join(tmp, d))
  if (![pnpmDir, npmDir].every((d) => fs.existsSync(path.join(d, 'node_modules')))) return t.skip('needs both installs above')
  assertExchanged(await exchange(pnpmDir, npmDir), pnpmDir)
})

test('the main tarball alone, no Rust: the install fails with one message naming the fix', () => {
  const dir = project('no-prebuilt-no-cargo', { overridePlatform: false })
  const r = npmInstall(dir, ['--foreground-scripts'], noRustEnv)
  assert.notEqual(r.code, 0, r.out)
  const msgs = r.out.split('\n').filter((l) => l.includes('[eventcast] no prebuilt addon'))
  assert.equal(msgs.length, 1, r.out)
  assert.match(msgs[0], /cargo \(Rust\) is not on PATH/)
  assert.match(msgs[0], /rustup\.rs/)
  assert.match(msgs[0], /optional dependencies/)
})

test('the main tarball alone, cargo on PATH: the install builds the addon from source', { timeout: 20 * 60e3 }, async (t) => {
  if (spawnSync('cargo', ['--version']).status !== 0) return t.skip('cargo is not on PATH')
  const dir = project('source-build', { overridePlatform: false })
  // Offline: the crates come from cargo's cache (npm test has no network).
  // Debug build, and the repository's target dir as cache, so only this
  // package's crate and the napi glue compile: the test shows the path works,
  // not how long a cold release build takes.
  const env = { ...baseEnv, EVENTCAST_DEBUG: '1', CARGO_NET_OFFLINE: 'true', CARGO_TARGET_DIR: path.join(root, 'target') }
  const r = npmInstall(dir, ['--foreground-scripts'], env)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /building it from source with cargo/)
  assert.match(r.out, new RegExp(`built ${addonFile.replace(/\./g, '\\.')}`))
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', plat.name)), 'no platform package was installed')
  const built = path.join(dir, 'node_modules', 'eventcast', addonFile)
  assert.ok(fs.existsSync(built))
  assert.notEqual(sha(built), builtSha, 'a new build, not a copy of the packed addon')
  const probe = sh(process.execPath, ['-e', "const E = require('eventcast'); console.log(typeof E, Object.keys(require.cache).find((k) => k.endsWith('.node')))"], { cwd: dir, env: noRustEnv })
  assert.equal(probe.code, 0, probe.out)
  assert.equal(probe.out.trim(), `function ${fs.realpathSync(built)}`)
})
