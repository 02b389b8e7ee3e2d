import type { AuthorizedApi } from '../../pipeline/receipt-work.ts'
import { asObject } from '../json-object.ts'
import { ProviderRequestError } from './provider-client.ts'

/** How a provider pages a collection: where the items are and which query parameter carries the cursor. */
export interface PagingStyle {
  /** Oura: `data`; WHOOP: `records`. */
  itemsField: string
  /** Oura: `next_token`; WHOOP: `nextToken`. Both answer with `next_token`. */
  cursorParam: string
}

/** Guards against a provider that keeps sending a cursor: no real range has this many pages. */
const MAX_PAGES = 500

/** Follows `next_token` through a collection, one page of items at a time. */
export async function * pages(
  api: AuthorizedApi, path: string, query: Record<string, string>, style: PagingStyle
): AsyncGenerator<unknown[]> {
  let nextToken: string | undefined
  for (let page = 0; page < MAX_PAGES; page++) {
    const body = asObject(await api.getJson(path, nextToken === undefined ? query : { ...query, [style.cursorParam]: nextToken }))
    const items = body?.[style.itemsField]
    if (!Array.isArray(items)) {
      throw new ProviderRequestError('upstream_error', true, `a collection page came without ${style.itemsField} (${path})`)
    }
    yield items as unknown[]
    if (typeof body?.next_token !== 'string' || body.next_token === '') return
    nextToken = body.next_token
  }
  throw new ProviderRequestError('validation_error', false, `the provider kept paging past ${MAX_PAGES} pages (${path})`)
}
