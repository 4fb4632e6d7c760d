-- 0001: what the agents publish. Reports and their identifiers are partitioned by the
-- day of the report id's time (a ULID: the id alone decides the partition, so the
-- primary key (id_ts, id) is unique by id). A DEFAULT partition takes rows of days
-- that have no partition yet (a box with a wrong clock): nothing is ever refused.

CREATE TABLE reports (
    id               text             NOT NULL,
    id_ts            timestamptz      NOT NULL,  -- time part of the ULID: partition key
    ts               timestamptz      NOT NULL,  -- event time of the detection
    site             text             NOT NULL,
    agent            text             NOT NULL,
    kind             text             NOT NULL,
    severity         text             NOT NULL,
    score            double precision NOT NULL,
    subject_type     text             NOT NULL,
    subject_id       text             NOT NULL,  -- a pseudonym for personal types
    subject_fleet_id text,                       -- fleet-scoped pseudonym, if the box has one
    body             jsonb            NOT NULL,  -- the afe.report/1 document as received
    topic            text             NOT NULL,
    received_at      timestamptz      NOT NULL,  -- when the collector got the message
    stored_at        timestamptz      NOT NULL DEFAULT clock_timestamp(),
    collector        text             NOT NULL,
    PRIMARY KEY (id_ts, id)
) PARTITION BY RANGE (id_ts);
CREATE TABLE reports_default PARTITION OF reports DEFAULT;
CREATE INDEX reports_site_ts ON reports (site, ts);
CREATE INDEX reports_kind_ts ON reports (kind, ts);

-- Every subject and related subject of a report, for correlation across reports.
CREATE TABLE report_identifiers (
    report_id  text        NOT NULL,
    id_ts      timestamptz NOT NULL,
    site       text        NOT NULL,
    ts         timestamptz NOT NULL,
    kind       text        NOT NULL,
    role       text        NOT NULL,           -- "subject" | "related"
    id_type    text        NOT NULL,
    pseudonym  text        NOT NULL,
    fleet_id   text,
    PRIMARY KEY (id_ts, report_id, role, id_type, pseudonym)
) PARTITION BY RANGE (id_ts);
CREATE TABLE report_identifiers_default PARTITION OF report_identifiers DEFAULT;
CREATE INDEX report_identifiers_fleet ON report_identifiers (fleet_id) WHERE fleet_id IS NOT NULL;
CREATE INDEX report_identifiers_site_pseudo ON report_identifiers (site, pseudonym);

-- Heartbeat history (QoS 0, one a minute per box by default), partitioned by day.
CREATE TABLE heartbeats (
    site        text        NOT NULL,
    agent       text        NOT NULL,
    ts          timestamptz NOT NULL,
    boot_seq    integer     NOT NULL,
    received_at timestamptz NOT NULL,
    body        jsonb       NOT NULL,
    PRIMARY KEY (ts, site, agent)
) PARTITION BY RANGE (ts);
CREATE TABLE heartbeats_default PARTITION OF heartbeats DEFAULT;

-- The latest known state of every box: presence (retained birth / will) and the
-- last heartbeat's figures.
CREATE TABLE agents (
    site                 text NOT NULL,
    agent                text NOT NULL,
    state                text NOT NULL,   -- "online" | "offline"
    reason               text,            -- offline: "shutdown" | "lost"
    boot_seq             integer NOT NULL DEFAULT 0,
    status_ts            timestamptz,
    status_order_ts      timestamptz,     -- when the status's connection began
    status_rank          smallint NOT NULL DEFAULT 0,  -- 0 online, 1 offline
    versions             jsonb NOT NULL DEFAULT '{}',
    models               jsonb NOT NULL DEFAULT '{}',
    config_hash          text NOT NULL DEFAULT '',
    last_heartbeat_ts    timestamptz,
    last_heartbeat_at    timestamptz,     -- collector time, for staleness
    outbox_depth         integer,
    oldest_pending_age_s double precision,
    heartbeat            jsonb,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, agent)
);

-- Alerts about the fleet itself (a box offline, silent, or with a growing backlog).
CREATE TABLE fleet_alerts (
    id         bigserial PRIMARY KEY,
    site       text        NOT NULL,
    agent      text        NOT NULL,
    kind       text        NOT NULL,     -- "box.offline" | "box.silent" | "box.backlog"
    raised_at  timestamptz NOT NULL DEFAULT now(),
    cleared_at timestamptz,
    detail     jsonb       NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX fleet_alerts_open ON fleet_alerts (site, agent, kind) WHERE cleared_at IS NULL;

-- Messages that could not be stored as what their topic says (bad JSON, schema
-- violation, topic/body mismatch): kept with the reason, acknowledged, counted.
CREATE TABLE rejects (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text        NOT NULL,
    reason      text        NOT NULL,
    payload     bytea       NOT NULL,
    collector   text        NOT NULL
);
CREATE INDEX rejects_received ON rejects (received_at);

-- How long rows are kept, by report kind prefix (the longest matching prefix wins;
-- "" is the default). Special names: "@heartbeats", "@rejects", "@fleet_alerts".
CREATE TABLE retention (
    kind_prefix text PRIMARY KEY,
    keep_days   integer NOT NULL CHECK (keep_days > 0)
);
INSERT INTO retention VALUES ('', 400), ('agent.', 30), ('parcel.', 730),
    ('@heartbeats', 14), ('@rejects', 30), ('@fleet_alerts', 180);
