-- The outbox is worked off in lanes: all events of one user fall into the same lane (so their order is kept),
-- and each lane is published by one node at a time, under a lease that another node takes over when the
-- holder stops renewing it.
ALTER TABLE outbox ADD COLUMN lane smallint GENERATED ALWAYS AS ((hashtext(user_id) & 15)::smallint) STORED;
ALTER TABLE outbox ADD COLUMN dead_lettered_at timestamptz;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending_by_lane ON outbox (lane, id) WHERE published_at IS NULL AND dead_lettered_at IS NULL;
CREATE INDEX outbox_finished ON outbox (id) WHERE published_at IS NOT NULL OR dead_lettered_at IS NOT NULL;

CREATE TABLE relay_leases (
  lane        smallint PRIMARY KEY,
  holder      text,
  expires_at  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO relay_leases (lane) SELECT generate_series(0, 15);

ALTER TABLE kafka_dlq ADD COLUMN outbox_id bigint;
ALTER TABLE kafka_dlq ADD COLUMN dlq_published boolean NOT NULL DEFAULT false;
CREATE INDEX kafka_dlq_failed_at ON kafka_dlq (failed_at);
