import type { Metrics } from '../metrics/registry.ts'
import type { Queryable } from '../storage/database.ts'
import type { Pseudonymize } from './secrets.ts'

export type AuditAction =
  | 'events.read' | 'latest.read' | 'recent.read' | 'device.create' | 'api_key.create' | 'api_key.revoke'
  | 'connection.start' | 'connection.create' | 'connection.delete' | 'connections.read' | 'connection.reauth_required'
  | 'receipts.replay'

export interface AuditEntry {
  principal: string
  action: AuditAction
  /** Raw user id of the data subject; stored only as its pseudonym. */
  userId?: string
  detail?: Record<string, string | number | boolean | null>
}

export type Audit = (db: Queryable, entry: AuditEntry) => Promise<void>

/** Writes one append-only audit record. Detail must never hold values or tokens. */
export function createAudit(pseudonymize: Pseudonymize, metrics: Metrics): Audit {
  return async (db, entry) => {
    await db.query('INSERT INTO audit_log (principal, action, subject, detail) VALUES ($1, $2, $3, $4::jsonb)', [
      entry.principal, entry.action, entry.userId === undefined ? null : pseudonymize(entry.userId), JSON.stringify(entry.detail ?? {})
    ])
    metrics.auditRecordsTotal.inc({ action: entry.action })
  }
}
