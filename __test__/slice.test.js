'use strict'
// The addon's tokio runtime is its own (crates/eventcast-node/src/lib.rs `init_runtime`):
// its workers are named `eventcast-rt` and each asks Linux for a 0.1 ms
// scheduler slice (crates/eventcast/src/slice.rs), so a worker woken to publish or to hand
// a batch to JS preempts a busy CPU sooner. The README ("Performance") says so.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
require('../binding.js')

const LINUX = process.platform === 'linux'

/** [tid, name] of this process's threads. */
function threads () {
  return fs.readdirSync('/proc/self/task').map((tid) => [tid, fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()])
}

function kernelAtLeast (major, minor) {
  const [a, b] = os.release().split(/[.-]/).map(Number)
  return a > major || (a === major && b >= minor)
}

test('the addon runs its driver on its own named runtime', { skip: !LINUX && 'reads /proc (Linux only)' }, () => {
  const ours = threads().filter(([, name]) => name.startsWith('eventcast-rt'))
  assert.ok(ours.length >= 1, `threads: ${threads().map(([, n]) => n).join(', ')}`)
})

const sched = LINUX && fs.existsSync('/proc/self/sched')
test('each runtime worker has the short scheduler slice', {
  skip: (!LINUX && 'Linux only') ||
    (!kernelAtLeast(6, 12) && `custom scheduler slices need Linux 6.12+ (this is ${os.release()})`) ||
    (!sched && 'the kernel does not show /proc/<pid>/sched (CONFIG_SCHED_DEBUG)')
}, () => {
  const ours = threads().filter(([, name]) => name.startsWith('eventcast-rt'))
  assert.ok(ours.length >= 1)
  for (const [tid] of ours) {
    const slice = /se\.slice\s*:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/task/${tid}/sched`, 'utf8'))
    assert.ok(slice, `no se.slice for thread ${tid}`)
    assert.equal(Number(slice[1]), 100000, `thread ${tid}`)
  }
  // The JS thread is the application's: left with the default slice.
  const main = /se\.slice\s*:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/task/${process.pid}/sched`, 'utf8'))
  assert.notEqual(Number(main[1]), 100000)
})
