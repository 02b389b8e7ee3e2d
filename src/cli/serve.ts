import { createApp } from '../app.ts'
import type { Config } from '../config/load.ts'
import type { CliIo } from './main.ts'

/** Repeats of a signal within this window are one request: under `npm start` one Ctrl-C arrives twice. */
const SIGNAL_REPEAT_WINDOW_MS = 1000

/**
 * Runs the server until SIGTERM/SIGINT. The first signal starts a graceful stop bounded by
 * SHUTDOWN_TIMEOUT_MS; a later signal (outside the repeat window) or the deadline forces exit 1.
 */
export async function runServe(config: Config, _io: CliIo): Promise<number> {
  const app = await createApp(config)
  const address = await app.listen()
  app.logger.info({ address, storage: app.db.kind }, 'bridge listening')

  return new Promise<number>((resolve) => {
    let firstSignalAtMs: number | undefined
    const onSignal = (signal: NodeJS.Signals): void => {
      const nowMs = Date.now()
      if (firstSignalAtMs !== undefined) {
        if (nowMs - firstSignalAtMs < SIGNAL_REPEAT_WINDOW_MS) return
        app.logger.warn({ signal }, 'second signal: exiting immediately')
        process.exit(1)
      }
      firstSignalAtMs = nowMs
      app.logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'graceful stop started')
      const deadline = setTimeout(() => {
        app.logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'graceful stop timed out: exiting with work still open')
        process.exit(1)
      }, config.shutdownTimeoutMs)
      deadline.unref()
      app.stop().then(() => {
        app.logger.info('graceful stop finished')
        app.logger.flush()
        resolve(0)
      }, () => {
        app.logger.flush()
        resolve(1)
      })
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}
