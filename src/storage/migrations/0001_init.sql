-- Normalized events: the record. event_id is a name-based UUID of the storage key
-- (user_id, source, source_record_id, metric, context), so the primary key is the storage key.
CREATE TABLE events (
  event_id          uuid PRIMARY KEY,
  user_id           text NOT NULL,
  source            text NOT NULL,
  source_record_id  text NOT NULL,
  metric            text NOT NULL,
  -- '' stands for "no context" so the column can stay NOT NULL; the API renders it as null.
  context           text NOT NULL DEFAULT '',
  device_type       text NOT NULL,
  value             double precision NOT NULL,
  unit              text NOT NULL,
  start_at          timestamptz NOT NULL,
  end_at            timestamptz NOT NULL,
  -- Zone offset of the measurement as delivered, in minutes east of UTC, so start/end render as they came.
  tz_offset_min     smallint NOT NULL DEFAULT 0,
  source_updated_at timestamptz,
  ingested_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_user_start ON events (user_id, start_at, event_id);
CREATE INDEX events_user_metric_start ON events (user_id, metric, start_at DESC);
CREATE INDEX events_user_record ON events (user_id, source, source_record_id);

-- Transactional outbox: written in the same transaction as the events it announces; the relay publishes
-- rows in id order and marks them only after the broker acknowledged.
CREATE TABLE outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id      uuid NOT NULL,
  user_id       text NOT NULL,
  op            text NOT NULL,
  payload       text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;

-- Verified provider notifications, stored before they are worked off.
CREATE TABLE webhook_receipts (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider         text NOT NULL,
  dedup_key        text NOT NULL,
  event_type       text NOT NULL,
  data_type        text NOT NULL,
  object_id        text,
  provider_user_id text NOT NULL,
  status           text NOT NULL DEFAULT 'pending',
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,
  last_error_code  text,
  received_at      timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  UNIQUE (provider, dedup_key)
);
CREATE INDEX webhook_receipts_due ON webhook_receipts (next_attempt_at) WHERE status = 'pending';

-- Messages that could not be published; an operator lists and replays them.
CREATE TABLE kafka_dlq (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  original_topic text NOT NULL,
  message_key    text,
  payload        text NOT NULL,
  headers        jsonb NOT NULL DEFAULT '{}',
  error_message  text NOT NULL,
  retry_count    integer NOT NULL DEFAULT 0,
  failed_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at    timestamptz
);

-- OAuth connections; tokens are AES-256-GCM ciphertexts (key id kept beside them), never plaintext.
CREATE TABLE connections (
  id                    uuid PRIMARY KEY,
  user_id               text NOT NULL,
  provider              text NOT NULL,
  provider_user_id      text,
  status                text NOT NULL DEFAULT 'active',
  scopes                text[] NOT NULL DEFAULT '{}',
  access_token_enc      bytea,
  refresh_token_enc     bytea,
  token_key_id          text,
  access_expires_at     timestamptz,
  -- Incremented by every token write; a writer holding an older version must not overwrite a newer token.
  token_version         integer NOT NULL DEFAULT 0,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, provider),
  UNIQUE (provider, provider_user_id)
);

-- HealthKit device tokens, bound to one user; only a SHA-256 of the token is kept.
CREATE TABLE devices (
  id          uuid PRIMARY KEY,
  user_id     text NOT NULL,
  name        text,
  token_hash  bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- API keys for the admin and query APIs; only a SHA-256 of the key is kept.
CREATE TABLE api_keys (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  key_hash    bytea NOT NULL UNIQUE,
  scopes      text[] NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Append-only audit log of PHI reads and admin changes; subjects are pseudonyms, never raw user ids.
CREATE TABLE audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  principal  text NOT NULL,
  action     text NOT NULL,
  subject    text,
  detail     jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
