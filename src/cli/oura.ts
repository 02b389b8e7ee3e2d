import type { Config } from '../config/load.ts'
import { ConfigError } from '../errors.ts'
import {
  DEFAULT_RENEW_BEFORE_MS, deleteOurSubscriptions, deleteSubscription, listSubscriptions, ouraCallbackUrl, planSubscriptions,
  renewExpiringSubscriptions, syncSubscriptions, type OuraSubscription
} from '../providers/oura/subscriptions.ts'

type Print = (text: string) => void

export interface OuraSubscriptionsCommand {
  action: 'list' | 'sync' | 'renew' | 'delete'
  /** For delete: these ids, ours or not. */
  ids?: string[]
  /** For delete: every subscription of this bridge's callback URL. */
  all?: boolean
}

/** Generous: a create waits for Oura's handshake against the bridge, which Oura itself may take seconds to run. */
const REQUEST_TIMEOUT_MS = 30_000

function formatSubscription(subscription: OuraSubscription, callbackUrl: string): string {
  return [
    subscription.id,
    subscription.eventType.padEnd(6),
    subscription.dataType.padEnd(15),
    `expires=${new Date(subscription.expiresAtMs).toISOString()}`,
    subscription.callbackUrl === callbackUrl ? 'ours' : `other callback=${subscription.callbackUrl}`
  ].join('  ')
}

/**
 * Manages Oura's webhook subscriptions for `PUBLIC_BASE_URL/webhooks/oura`. Oura failures throw
 * BB_PROVIDER_REQUEST_FAILED (exit 1 through runCli); a missing Oura configuration is a ConfigError (exit 78).
 */
export async function runOuraSubscriptions(config: Config, command: OuraSubscriptionsCommand, print: Print): Promise<number> {
  const oura = config.oura
  if (oura === undefined) {
    throw new ConfigError(['OURA_CLIENT_ID, OURA_CLIENT_SECRET and OURA_WEBHOOK_VERIFICATION_TOKEN must be set to manage Oura subscriptions'])
  }
  const callbackUrl = ouraCallbackUrl(config.publicBaseUrl)
  const options = { timeoutMs: REQUEST_TIMEOUT_MS, nowMs: Date.now() }
  switch (command.action) {
    case 'list': {
      const subscriptions = await listSubscriptions(oura, options)
      for (const subscription of subscriptions) print(formatSubscription(subscription, callbackUrl))
      const plan = planSubscriptions(subscriptions, callbackUrl, options.nowMs)
      print(`${subscriptions.length} subscriptions; for ${callbackUrl}: ${plan.keep.length + plan.renew.length} present, ` +
        `${plan.create.length} missing, ${plan.renew.length} expiring within ${DEFAULT_RENEW_BEFORE_MS / 86_400_000} days` +
        (plan.create.length + plan.renew.length > 0 ? ' (run `bridge oura subscriptions sync`)' : ''))
      return 0
    }
    case 'sync': {
      const summary = await syncSubscriptions(oura, callbackUrl, options)
      for (const subscription of summary.renewed) print(`renewed  ${formatSubscription(subscription, callbackUrl)}`)
      for (const subscription of summary.created) print(`created  ${formatSubscription(subscription, callbackUrl)}`)
      print(`${summary.created.length} created, ${summary.renewed.length} renewed, ${summary.kept.length} kept for ${callbackUrl}`)
      return 0
    }
    case 'renew': {
      const renewed = await renewExpiringSubscriptions(oura, callbackUrl, options)
      for (const subscription of renewed) print(`renewed  ${formatSubscription(subscription, callbackUrl)}`)
      print(`${renewed.length} renewed`)
      return 0
    }
    case 'delete': {
      if (command.all === true) {
        const deleted = await deleteOurSubscriptions(oura, callbackUrl, options)
        for (const subscription of deleted) print(`deleted  ${formatSubscription(subscription, callbackUrl)}`)
        print(`${deleted.length} deleted`)
        return 0
      }
      for (const id of command.ids ?? []) {
        await deleteSubscription(oura, id, options)
        print(`deleted  ${id}`)
      }
      return 0
    }
  }
}
