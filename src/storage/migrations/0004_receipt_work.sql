-- Receipts are worked off in priority order: live notifications (0) before reconciliation (1) before backfill (2),
-- so a new user's 30-day history never delays the webhooks of everyone else.
ALTER TABLE webhook_receipts ADD COLUMN priority smallint NOT NULL DEFAULT 0;
-- Reconciliation and backfill receipts name a time range of a collection instead of one document.
ALTER TABLE webhook_receipts ADD COLUMN range_start timestamptz;
ALTER TABLE webhook_receipts ADD COLUMN range_end timestamptz;
DROP INDEX webhook_receipts_due;
CREATE INDEX webhook_receipts_due ON webhook_receipts (priority, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_receipts_finished ON webhook_receipts (finished_at) WHERE status IN ('done', 'ignored', 'skipped');
CREATE INDEX webhook_receipts_dead ON webhook_receipts (id) WHERE status = 'dead';

-- Single-flight token refresh across processes: a short lease on the connection row, taken only by a refresher
-- holding the current token_version. Waiters poll the version instead of holding a connection on a row lock.
ALTER TABLE connections ADD COLUMN refresh_holder text;
ALTER TABLE connections ADD COLUMN refresh_lease_until timestamptz;

-- Periodic jobs that must run on one node per period: whoever moves next_run_at forward runs the job.
CREATE TABLE scheduled_jobs (
  name         text PRIMARY KEY,
  next_run_at  timestamptz NOT NULL DEFAULT '-infinity',
  last_holder  text,
  last_run_at  timestamptz
);
