'use strict'
// The quantile the bench reports, shared by the peers (per trial) and the
// driver (over pooled trials), so both compute it the same way.

/** The `q` quantile of `arr` (nearest rank), or null when it is empty. */
function quantile (arr, q) {
  if (arr.length === 0) return null
  const v = Float64Array.from(arr).sort()
  return v[Math.min(v.length - 1, Math.round((v.length - 1) * q))]
}

module.exports = { quantile }
