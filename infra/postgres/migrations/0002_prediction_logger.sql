-- The prediction logger's schema: labels partitioned by day like predictions, the indexes its readers need,
-- and the labelled-predictions view. Nothing wrote labels before this migration, so the table is replaced.

-- Redelivered labels are harmless: (event_id, label_time) is unique. A corrected label for the same event
-- comes with a later label_time and is kept beside the first; readers take the newest.
DROP TABLE labels;
CREATE TABLE labels (
    event_id    text        NOT NULL,
    entity_id   text        NOT NULL,
    label       smallint    NOT NULL CHECK (label IN (0, 1)),
    label_time  timestamptz NOT NULL,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, label_time)
) PARTITION BY RANGE (label_time);

CREATE TABLE labels_default PARTITION OF labels DEFAULT;

CREATE INDEX labels_label_time_idx ON labels (label_time);
CREATE INDEX labels_entity_time_idx ON labels (entity_id, label_time);

CREATE INDEX predictions_event_time_idx ON predictions (event_time);
CREATE INDEX predictions_entity_time_idx ON predictions (entity_id, event_time);

-- Each prediction with the newest label of its event, whichever of the two arrived first: the join is made
-- when read, so a label stored before its prediction (or after) joins all the same.
CREATE VIEW labelled_predictions AS
SELECT p.*, l.label, l.label_time, l.source AS label_source
FROM predictions AS p
JOIN LATERAL (
    SELECT label, label_time, source FROM labels
    WHERE labels.event_id = p.event_id
    ORDER BY label_time DESC
    LIMIT 1
) AS l ON true;
