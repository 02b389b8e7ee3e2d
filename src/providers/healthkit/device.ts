import type { DeviceType } from '../../domain/event.ts'

/** Apple product types look like `Watch7,1` or `iPhone15,2`; HKDevice.model is `Watch` or `iPhone`. */
export function deviceTypeOf(...hints: unknown[]): DeviceType {
  for (const hint of hints) {
    if (typeof hint !== 'string') continue
    if (/^watch/i.test(hint) || /apple watch/i.test(hint)) return 'apple_watch'
    if (/^iphone/i.test(hint)) return 'iphone'
  }
  return 'other'
}
