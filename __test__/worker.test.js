'use strict'
// Instances inside worker threads: each worker has its own event loop, and the
// addon receives on the loop of the thread that started the instance. A worker
// terminated while its instance is still started must tear down cleanly (the
// env cleanup hook closes the poll handle), and the process must keep working.
const test = require('node:test')
const assert = require('node:assert')
const { Worker } = require('node:worker_threads')
const Eventcast = require('..')
const { requireNetns, port: randomPort, next } = require('./helpers.js')

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const Eventcast = require(workerData.root)
const ec = Eventcast({ port: workerData.port })
ec.on('ping', (n) => {
  ec.emit('pong', n, require('node:worker_threads').threadId)
  if (workerData.stopItself) ec.stop(() => parentPort.postMessage('stopped'))
})
ec.start(() => parentPort.postMessage('ready'))
`

function startWorker (port, stopItself) {
  const worker = new Worker(WORKER, { eval: true, workerData: { root: require.resolve('..'), port, stopItself } })
  const exited = new Promise((resolve) => worker.once('exit', resolve))
  const ready = new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return { worker, exited, ready }
}

/** Pings the worker's instance from `main` and checks the answer comes from that worker. */
async function pingThrough (main, w, n) {
  await w.ready
  // Read now: a worker that stops itself after answering may have exited by
  // the time the pong is read, and an exited Worker's threadId is -1.
  const id = w.worker.threadId
  main.emit('ping', n)
  const [got, thread] = await next(main, 'pong', 5000)
  assert.strictEqual(got, n)
  assert.strictEqual(thread, id)
}

test('an instance in a worker thread receives, and terminating the worker while started is clean', { timeout: 30000 }, async () => {
  requireNetns()
  const port = randomPort()
  const main = Eventcast({ port })
  await main.start()
  try {
    // 1: terminated while its instance is started (no stop()).
    const w1 = startWorker(port, false)
    await pingThrough(main, w1, 1)
    await w1.worker.terminate()
    assert.strictEqual(await w1.exited, 1, 'terminate() exit code')

    // 2: the process still works; this worker stops its instance and exits by itself.
    const w2 = startWorker(port, true)
    await pingThrough(main, w2, 2)
    assert.strictEqual(await w2.exited, 0, 'a stopped instance lets its worker exit')
  } finally {
    await main.stop()
  }
})
