import type { Queryable } from './database.ts'

export interface NewReceipt {
  provider: 'oura' | 'whoop'
  dedupKey: string
  eventType: string
  dataType: string
  objectId: string | null
  providerUserId: string
  /** `pending` receipts are worked off; `ignored` ones (types the bridge does not map) are only kept. */
  status: 'pending' | 'ignored'
}

/** Stores a verified notification once; returns false when it was already stored (a duplicate delivery). */
export async function insertReceipt(db: Queryable, receipt: NewReceipt): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO webhook_receipts (provider, dedup_key, event_type, data_type, object_id, provider_user_id, status, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 = 'ignored' THEN now() END)
     ON CONFLICT (provider, dedup_key) DO NOTHING`,
    [receipt.provider, receipt.dedupKey, receipt.eventType, receipt.dataType, receipt.objectId, receipt.providerUserId, receipt.status])
  return rowCount > 0
}

export async function pendingReceiptCount(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: string }>("SELECT count(*)::text AS n FROM webhook_receipts WHERE status = 'pending'")
  return Number(rows[0]?.n ?? 0)
}
