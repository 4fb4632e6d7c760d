-- 0002: the desks. Reports stay as received; what people do with them lives here.

CREATE TABLE desk_users (
    name       text PRIMARY KEY,
    role       text NOT NULL CHECK (role IN ('fraud', 'inspection', 'admin')),
    pw_hash    text NOT NULL,                 -- scrypt$N$r$p$salt$hash (hashlib.scrypt)
    disabled   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Server-side sessions: the cookie holds a random token, the table its sha256.
CREATE TABLE desk_sessions (
    token_hash text PRIMARY KEY,
    user_name  text NOT NULL REFERENCES desk_users (name) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- Workflow of a report alert: new -> acknowledged -> closed.
CREATE TABLE alert_state (
    report_id  text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('new', 'acknowledged', 'closed')),
    note       text NOT NULL DEFAULT '',
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the inspector found when the diverted parcel was opened.
CREATE TABLE inspections (
    report_id  text PRIMARY KEY,
    result     text NOT NULL CHECK (result IN ('confirmed', 'cleared', 'not_found')),
    found      text NOT NULL DEFAULT '',      -- e.g. "120 SIM cards"
    note       text NOT NULL DEFAULT '',
    entered_by text NOT NULL,
    entered_at timestamptz NOT NULL DEFAULT now()
);

-- Who viewed and changed what (append-only for the desk's database role).
CREATE TABLE audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    user_name text NOT NULL,
    role      text NOT NULL,
    action    text NOT NULL,   -- login, login_failed, logout, view, ack, close, inspect, ...
    object    text NOT NULL DEFAULT '',
    detail    jsonb NOT NULL DEFAULT '{}',
    remote    text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
