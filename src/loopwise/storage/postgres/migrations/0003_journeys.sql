-- Journeys: each person's state per journey, and the outbox of deliveries (issue 17).
CREATE TABLE journey_states (
    journey text COLLATE "C" NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    due_at timestamptz,
    record bytea NOT NULL,
    PRIMARY KEY (journey, profile_id)
);
CREATE INDEX journey_states_profile_id ON journey_states (profile_id);
CREATE INDEX journey_states_due ON journey_states (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    key text COLLATE "C" UNIQUE NOT NULL,
    profile_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    done_at timestamptz,
    record bytea NOT NULL
);
CREATE INDEX outbox_profile_id ON outbox (profile_id);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
