/**
 * Runs a benchmark's main function with cleanup that always happens: on success, on failure (exit code 1 and the
 * stack in the log) and on Ctrl-C (exit 130), so scratch databases, topics and child processes never linger.
 */
export async function runBenchmark(main: () => Promise<void>, cleanUp: () => Promise<void>, log: (message: string) => void): Promise<void> {
  process.once('SIGINT', () => {
    log('interrupted; cleaning up')
    void cleanUp().finally(() => process.exit(130))
  })
  try {
    await main()
  } catch (error) {
    process.exitCode = 1
    log(`FAILED: ${(error as Error).stack ?? String(error)}`)
  } finally {
    await cleanUp()
  }
}
