// ESM entry: `import Eventcast from 'eventcast'`.
import Eventcast from './index.js'

export default Eventcast
export { Eventcast }
export const getRandomPort = Eventcast.getRandomPort
export const protocolVersion = Eventcast.protocolVersion
