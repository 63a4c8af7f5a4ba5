-- Loopwise storage on PostgreSQL, version 1: every store's table.
--
-- Text keys use the "C" collation, so they sort by code point as on SQLite and in memory,
-- whatever the database's locale. Records are the same bytes every backend stores
-- (loopwise.storage.codec, orjson), kept as bytea, so a copy reads back anywhere. Times are
-- timestamptz at millisecond precision (the stores round, as SQLite's ISO strings do).

CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);

-- The event log, partitioned by month of receipt (see postgres/partitions.py); partitions are
-- created on demand. seq is the log position, from one sequence, unique across partitions;
-- event_ids holds every stored message id once, for dedupe across partitions.
CREATE SEQUENCE events_seq;
CREATE TABLE events (
    seq bigint NOT NULL,
    received_at timestamptz NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    type text,
    ts timestamptz NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (seq, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX events_profile_id ON events (profile_id, seq);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE event_ids (message_id text COLLATE "C" PRIMARY KEY);

CREATE TABLE profiles (
    id text COLLATE "C" PRIMARY KEY,
    last_seen timestamptz NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX profiles_last_seen ON profiles (last_seen);

CREATE TABLE identities (
    identifier text COLLATE "C" PRIMARY KEY,
    profile_id text COLLATE "C" NOT NULL
);
CREATE INDEX identities_profile_id ON identities (profile_id);

CREATE TABLE consent (key text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);

-- The consent audit trail: append-only (no UPDATE, ever); retention may DELETE old records.
-- The hash chain over the records is kept by loopwise.privacy.audit, not here.
CREATE TABLE audit (
    seq bigint PRIMARY KEY,
    subject text COLLATE "C" NOT NULL,
    at timestamptz NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX audit_subject ON audit (subject, seq);
CREATE FUNCTION audit_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_update();

CREATE TABLE exposures (
    experiment text COLLATE "C" NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    exposed_at timestamptz NOT NULL,
    id bigserial NOT NULL,  -- insertion order; an upsert keeps it, as SQLite keeps a rowid
    record bytea NOT NULL,
    PRIMARY KEY (experiment, profile_id)
);
CREATE INDEX exposures_profile_id ON exposures (profile_id);
CREATE INDEX exposures_order ON exposures (exposed_at, id);
CREATE INDEX exposures_experiment_order ON exposures (experiment, exposed_at, id);

CREATE TABLE decisions (
    decision_id text COLLATE "C" PRIMARY KEY,
    profile_id text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    id bigserial NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX decisions_profile_created ON decisions (profile_id, created_at, id);
CREATE INDEX decisions_created ON decisions (created_at, id);
CREATE TABLE outcomes (
    id bigserial PRIMARY KEY,
    decision_id text COLLATE "C" NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX outcomes_decision_id ON outcomes (decision_id, id);

CREATE TABLE segment_history (
    id bigserial PRIMARY KEY,
    profile_id text COLLATE "C" NOT NULL,
    segment text COLLATE "C" NOT NULL,
    change text NOT NULL,
    at timestamptz NOT NULL
);
CREATE INDEX segment_history_profile_id ON segment_history (profile_id, id);
CREATE INDEX segment_history_at ON segment_history (at, id);

CREATE SEQUENCE item_observations_seq;
CREATE TABLE item_observations (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    anonymous boolean NOT NULL DEFAULT false,
    record bytea NOT NULL
);
CREATE TABLE checkpoints (
    name text COLLATE "C" PRIMARY KEY,
    position bigint NOT NULL,
    saved_at timestamptz NOT NULL,
    data bytea NOT NULL
);

CREATE TABLE items (id text COLLATE "C" PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE config (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE revisions (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
