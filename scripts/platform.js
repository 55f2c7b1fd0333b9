'use strict'
// The file name napi-rs's generated loader (binding.js) looks for on this machine:
// eventcast.<platform>-<arch>[-<abi>].node
const fs = require('node:fs')

function isMusl () {
  if (process.platform !== 'linux') return false
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = process.report && process.report.getReport && process.report.getReport()
    return !(report && report.header && report.header.glibcVersionRuntime)
  }
}

function platformSuffix () {
  const { platform, arch } = process
  if (platform === 'linux') {
    if (arch === 'arm') return 'linux-arm-gnueabihf'
    return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

module.exports = { platformSuffix, addonName: () => `eventcast.${platformSuffix()}.node` }
