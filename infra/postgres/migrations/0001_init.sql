-- Kestrel's first schema: the prediction log (partitioned by event day), labels, drift reports, model registry.
-- Applied once by kestrel.devstack.migrations (bookkeeping in schema_migrations); never edit after release.

-- Every scored event. Idempotent writes: INSERT ... ON CONFLICT (prediction_id, event_time) DO NOTHING.
-- The partition key must be part of the primary key; a prediction's event_time never changes, so
-- prediction_id alone still identifies the row.
CREATE TABLE predictions (
    prediction_id       text             NOT NULL,
    event_id            text             NOT NULL,
    entity_id           text             NOT NULL,
    event_time          timestamptz      NOT NULL,
    model_name          text             NOT NULL,
    model_version       text             NOT NULL,
    score               double precision NOT NULL,
    threshold           double precision,
    decision            boolean          NOT NULL,
    features            jsonb            NOT NULL DEFAULT '{}'::jsonb,
    feature_set_version text             NOT NULL,
    features_age_ms     bigint,
    degraded            boolean          NOT NULL DEFAULT false,
    flags               text[]           NOT NULL DEFAULT '{}',
    latency_us          bigint,
    source              text             NOT NULL,
    predicted_at        timestamptz      NOT NULL,
    PRIMARY KEY (prediction_id, event_time)
) PARTITION BY RANGE (event_time);

-- Catches rows for days without their own partition, so an insert never fails for lack of one.
CREATE TABLE predictions_default PARTITION OF predictions DEFAULT;

CREATE INDEX predictions_event_id_idx ON predictions (event_id);
CREATE INDEX predictions_model_time_idx ON predictions (model_name, model_version, event_time);

-- Creates the partition for one UTC day if missing and returns its name. Call it ahead of time
-- (e.g. daily for tomorrow): PostgreSQL refuses a new partition whose range already has rows in the
-- default partition.
CREATE FUNCTION create_predictions_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    partition_name text := format('predictions_%s', to_char(day, 'YYYYMMDD'));
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF predictions FOR VALUES FROM (%L) TO (%L)',
        partition_name,
        day::timestamp AT TIME ZONE 'UTC',
        (day + 1)::timestamp AT TIME ZONE 'UTC'
    );
    RETURN partition_name;
END;
$$;

-- Partitions for `days` consecutive UTC days starting at `first_day`; returns their names.
CREATE FUNCTION create_predictions_partitions(first_day date, days integer) RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT create_predictions_partition(first_day + offs) FROM generate_series(0, days - 1) AS offs;
$$;

-- Ground truth, one per event; a later label for the same event replaces the earlier one.
CREATE TABLE labels (
    event_id    text        PRIMARY KEY,
    entity_id   text        NOT NULL,
    label       smallint    NOT NULL CHECK (label IN (0, 1)),
    label_time  timestamptz NOT NULL,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX labels_label_time_idx ON labels (label_time);

-- Drift reports as published on kestrel.drift-reports.v1; payload is the whole report.
CREATE TABLE drift_reports (
    report_id  text        PRIMARY KEY,
    created_at timestamptz NOT NULL,
    subject    text        NOT NULL,
    drifted    boolean     NOT NULL DEFAULT false,
    payload    jsonb       NOT NULL
);

CREATE INDEX drift_reports_subject_time_idx ON drift_reports (subject, created_at);

-- Model versions and where each stands (trained, registered, promoted, rolled_back, ...).
CREATE TABLE model_registry (
    model_name   text        NOT NULL,
    version      text        NOT NULL,
    stage        text        NOT NULL,
    metrics      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    artifact_uri text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, version)
);
