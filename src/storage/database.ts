/**
 * The database port. Both adapters (pg for real PostgreSQL, PGlite embedded) run the same SQL; bulk writes pass
 * rows as one JSON parameter expanded with json_to_recordset, which both accept and which avoids per-row bind
 * parameters.
 */
export interface QueryResult<Row> {
  rows: Row[]
  rowCount: number
}

export interface Queryable {
  query: <Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]) => Promise<QueryResult<Row>>
  /** Runs a script of several statements without parameters (migrations). */
  exec: (sql: string) => Promise<void>
}

export interface TransactionOptions {
  /**
   * Deadline of each statement in this transaction, in milliseconds, instead of the database's
   * (DB_STATEMENT_TIMEOUT_MS); 0 lifts it (migrations). Ignored by the embedded adapter, which has none.
   */
  statementTimeoutMs?: number
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite'
  /** Runs `work` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>
  close(): Promise<void>
}
