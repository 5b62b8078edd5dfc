-- The model registry (issue 13): each version's lineage and training facts, MLflow-style aliases
-- (champion, challenger, ...) instead of fixed stages, and an audit trail of every change and why.
-- model_registry (0001) keeps one row per version; `stage` holds its status: registered or rejected.

ALTER TABLE model_registry
    ADD COLUMN checksum            text,
    ADD COLUMN feature_set_version text,
    ADD COLUMN train_from          timestamptz,
    ADD COLUMN train_until         timestamptz,
    ADD COLUMN train_rows          bigint,
    ADD COLUMN holdout_rows        bigint,
    ADD COLUMN reference           jsonb,
    ADD COLUMN parent_version      text,
    ADD COLUMN created_by          text NOT NULL DEFAULT 'unknown',
    ADD COLUMN description         text NOT NULL DEFAULT '';

-- An alias names one version of a model; moving it is the promotion (or rollback).
CREATE TABLE model_aliases (
    model_name text        NOT NULL,
    alias      text        NOT NULL,
    version    text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, alias),
    FOREIGN KEY (model_name, version) REFERENCES model_registry (model_name, version)
);

-- Every change to a model's versions or aliases, with who and why; never updated, only appended.
CREATE TABLE model_audit (
    id               bigserial   PRIMARY KEY,
    model_name       text        NOT NULL,
    version          text,
    action           text        NOT NULL,
    alias            text,
    previous_version text,
    reason           text        NOT NULL,
    actor            text        NOT NULL,
    at               timestamptz NOT NULL DEFAULT now(),
    details          jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX model_audit_model_idx ON model_audit (model_name, id);
