import { toError } from '../errors.ts'

/**
 * Collects cleanup steps as components start and runs them in reverse order on stop. Every step runs even if
 * an earlier one fails; the first error is rethrown at the end. Stopping twice is a no-op.
 */
export class Releasers {
  #steps: Array<{ name: string, release: () => Promise<void> | void }> = []
  #stopping: Promise<void> | undefined

  add(name: string, release: () => Promise<void> | void): void {
    this.#steps.push({ name, release })
  }

  async releaseAll(onError: (name: string, error: unknown) => void): Promise<void> {
    this.#stopping ??= (async () => {
      let firstError: Error | undefined
      for (const step of this.#steps.reverse()) {
        try {
          await step.release()
        } catch (error) {
          onError(step.name, error)
          firstError ??= toError(error)
        }
      }
      this.#steps = []
      if (firstError !== undefined) throw firstError
    })()
    return this.#stopping
  }
}
