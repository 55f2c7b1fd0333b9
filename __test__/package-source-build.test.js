'use strict'
// The package's last resort, as a user without a prebuilt addon meets it: the
// main tarball alone, cargo on PATH, and the install script builds the addon
// from source. It compiles the crate (about two minutes on 2 cores), so it is
// part of `npm run test:lab` (the long runs), not `npm test`; the other install
// paths are in package.test.js.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { root } = require('./helpers.js')
const { baseEnv, noRustEnv, sh, plat, addonFile, sha, builtSha, project, npmInstall } = require('./package-helpers.js')

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
