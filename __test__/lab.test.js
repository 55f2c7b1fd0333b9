'use strict'
// The network lab (tests/lab/run.sh), run by `npm run test:lab` (not `npm test`: it takes minutes).
// Builds 4 hosts in network namespaces joined by a bridge, applies nftables
// loss on the receivers, runs Node and Rust CLI peers, prints the results
// table, and fails when a required result is missed. Skips (with the reason)
// only where namespaces cannot be created (not root, no nftables, no netns),
// or when EVENTCAST_LAB=skip is set.
const test = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const { spawn } = require('node:child_process')

const RUN = path.resolve(__dirname, '..', 'tests', 'lab', 'run.sh')

/**
 * Runs tests/lab/run.sh with `args` as test `t`: skipped when EVENTCAST_LAB=skip
 * or when the lab says it cannot run here (exit 77, its last line the reason);
 * otherwise its results table becomes diagnostics and a missed result fails.
 */
async function runLab (t, args, what) {
  if (process.env.EVENTCAST_LAB === 'skip') {
    t.skip('EVENTCAST_LAB=skip')
    return
  }
  const { code, out } = await new Promise((resolve, reject) => {
    const child = spawn('bash', [RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d; process.stderr.write(d) })
    child.stderr.on('data', (d) => process.stderr.write(d))
    child.on('error', reject)
    child.on('exit', (c, sig) => resolve({ code: c === null ? sig : c, out }))
  })
  if (code === 77) {
    t.skip(out.trim().split('\n').pop())
    return
  }
  const table = out.slice(out.indexOf('eventcast network lab'))
  for (const line of table.split('\n')) t.diagnostic(line)
  assert.strictEqual(code, 0, `${what} missed required results (exit ${code}):\n${table}`)
}

test('network lab: delivery under 0/5/10/30% loss, two senders, a late joiner', { timeout: 20 * 60 * 1000 }, async (t) => {
  const args = process.env.EVENTCAST_LAB_ONLY ? ['--only', process.env.EVENTCAST_LAB_ONLY] : []
  await runLab(t, args, 'the lab')
})

// A mixed fleet: our sender, two receivers running the real eventcast 0.1.2
// (which is not on the npm registry: EVENTCAST_012_DIR names a checkout of it
// with its node_modules). Without it this reports skipped, with the reason.
test('network lab: our sender to two real 0.1.2 receivers at 10% loss (mixed-012-10)', { timeout: 10 * 60 * 1000 }, async (t) => {
  if (!process.env.EVENTCAST_012_DIR && process.env.EVENTCAST_LAB !== 'skip') {
    t.skip('EVENTCAST_012_DIR is not set (a checkout of eventcast 0.1.2 with its node_modules; not on the npm registry)')
    return
  }
  await runLab(t, ['--only', 'mixed-012-10'], 'the mixed-fleet lab')
})

// How repair cost grows with the group (issue 26): 16 receivers on 17 hosts at
// 5% loss, every event exactly once; the figures (union of losses, repairs,
// requests per receiver, the sender's CPU) are printed in the lab's notes and
// recorded in bench/README.md.
test('network lab: 16 receivers at 5% loss, the group-scaling figures (scale-16)', { timeout: 10 * 60 * 1000 }, async (t) => {
  await runLab(t, ['--only', 'scale-16'], 'the group-scaling lab')
})
