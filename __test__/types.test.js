'use strict'
// index.d.ts type-checks real usage (incl. the typed-events form) with tsc --strict.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { execFileSync } = require('node:child_process')
const { root } = require('./helpers.js')

test('index.d.ts: typed usage compiles, misuse is rejected', (t) => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!fs.existsSync(tsc)) return t.skip('typescript not installed (npm install)')
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--esModuleInterop', '--module', 'commonjs',
      '--target', 'es2022', '--types', 'node', path.join(__dirname, 'types-check.ts')], { cwd: root, encoding: 'utf8' })
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`)
  }
})
