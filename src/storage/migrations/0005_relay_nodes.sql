-- Relay nodes announce themselves on every lease renewal, so the 16 lanes are split evenly between the nodes
-- that publish instead of staying with whichever node started first.
CREATE TABLE relay_nodes (
  holder   text PRIMARY KEY,
  seen_at  timestamptz NOT NULL
);
