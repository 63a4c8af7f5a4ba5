-- The console's people and sessions, and the workspace history (issue 14).
CREATE TABLE users (
    email text COLLATE "C" PRIMARY KEY,
    role text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0,
    last_failed_at timestamptz
);

CREATE TABLE sessions (
    token_hash text COLLATE "C" PRIMARY KEY,
    email text COLLATE "C" NOT NULL,
    csrf text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked boolean NOT NULL DEFAULT false
);
CREATE INDEX sessions_email ON sessions (email, created_at);

CREATE TABLE workspace_history (
    revision bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    source text NOT NULL,
    comment text NOT NULL,
    document bytea NOT NULL,
    diff bytea NOT NULL
);
