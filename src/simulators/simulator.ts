import type { ProgressReporter } from './progress.ts'

/**
 * A simulator plays one outside party against a running bridge over real HTTP: the iPhone app uploading
 * HealthKit batches, the Oura and WHOOP clouds (OAuth, signed webhooks, a fake provider API). The demo runs every
 * simulator in its list side by side and knows nothing else about them.
 */
export interface SimulatorContext {
  /** The bridge's base URL, e.g. `http://127.0.0.1:41234`. */
  baseUrl: string
  /** Bearer token with the admin scope: simulators register devices and connections with it. */
  adminToken: string
  progress: ProgressReporter
  /** Aborted when the demo is interrupted; simulators stop sending and reject. */
  signal: AbortSignal
}

export interface SimulatorOutcome {
  /** Rejection codes the bridge reported, with how often. */
  rejectionCodes: Record<string, number>
  /**
   * Where the bridge answered differently from what the simulator expected (a deliberately bad sample
   * accepted, a re-upload not counted as duplicate …). Empty when the bridge behaved as designed.
   */
  surprises: string[]
  /** One-line remarks for the summary, e.g. what a re-upload demonstrated. */
  notes: string[]
}

export interface Simulator {
  /** Short machine name (`iphone`, `oura`); keys progress streams. */
  readonly name: string
  /** Human title for the progress view, e.g. `iPhone · HealthKit`. */
  readonly title: string
  /** The users whose data this simulator produces; the main one first. */
  readonly userIds: readonly string[]
  run(context: SimulatorContext): Promise<SimulatorOutcome>
}

/** A failure of the conversation with the bridge (not a per-sample rejection, which is a normal answer). */
export class SimulatorError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SimulatorError'
  }
}
