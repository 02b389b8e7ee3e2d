import { createApp, type App } from '../app.ts'
import type { Config } from '../config/load.ts'
import type { CliIo } from './main.ts'

/** Repeats of a signal within this window are one request: under `npm start` one Ctrl-C arrives twice. */
const SIGNAL_REPEAT_WINDOW_MS = 1000

/**
 * Runs the server until SIGTERM/SIGINT. The first signal starts a graceful stop bounded by
 * SHUTDOWN_TIMEOUT_MS; a later signal (outside the repeat window) or the deadline forces exit 1.
 * Handlers are installed before start-up, so a signal during migrations also ends in a clean stop.
 */
export async function runServe(config: Config, _io: CliIo): Promise<number> {
  let app: App | undefined
  let firstSignalAtMs: number | undefined
  let requestStop: () => void = () => {}
  const stopRequested = new Promise<void>((resolve) => { requestStop = resolve })

  const onSignal = (signal: NodeJS.Signals): void => {
    const nowMs = Date.now()
    if (firstSignalAtMs !== undefined) {
      if (nowMs - firstSignalAtMs < SIGNAL_REPEAT_WINDOW_MS) return
      app?.logger.warn({ signal }, 'second signal: exiting immediately')
      app?.logger.flush()
      process.exit(1)
    }
    firstSignalAtMs = nowMs
    const deadline = setTimeout(() => {
      app?.logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'graceful stop timed out: exiting with work still open')
      app?.logger.flush()
      process.exit(1)
    }, config.shutdownTimeoutMs)
    deadline.unref()
    app?.logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'graceful stop started')
    requestStop()
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  try {
    app = await createApp(config)
    if (firstSignalAtMs === undefined) {
      const address = await app.listen()
      app.logger.info({ address, storage: app.db.kind }, 'bridge listening')
    }
    await stopRequested
    await app.stop()
    app.logger.info('graceful stop finished')
    return 0
  } catch (error) {
    if (app === undefined) throw error
    app.logger.error({ err: error }, 'bridge stopped with an error')
    return 1
  } finally {
    app?.logger.flush()
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
  }
}
