-- Nonces of OAuth states already used: a state works once, on every node.
CREATE TABLE oauth_state_uses (
  nonce    text PRIMARY KEY,
  used_at  timestamptz NOT NULL DEFAULT now()
);
