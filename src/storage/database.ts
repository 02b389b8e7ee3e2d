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

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite'
  /** Runs `work` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>
  close(): Promise<void>
}
