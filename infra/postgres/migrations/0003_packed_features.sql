-- Feature vectors stored packed: predictions now carry feature_values in the vector order of the feature set
-- that feature_set_version names (schemas/prediction.avsc), so rows keep that array, not a jsonb map with every
-- name repeated. Rows logged before stay as they are, with their features map; a row has one or the other, and
-- the read API (kestrel.prediction_logger.read) returns matrices from either.
ALTER TABLE predictions ADD COLUMN feature_values double precision[];
ALTER TABLE predictions ALTER COLUMN features DROP NOT NULL;
ALTER TABLE predictions ALTER COLUMN features DROP DEFAULT;
ALTER TABLE predictions ADD CONSTRAINT predictions_features_logged
    CHECK ((features IS NULL) <> (feature_values IS NULL));

-- The view's p.* was expanded when it was created: recreate it so it carries feature_values too.
DROP VIEW labelled_predictions;
CREATE VIEW labelled_predictions AS
SELECT p.*, l.label, l.label_time, l.source AS label_source
FROM predictions AS p
JOIN LATERAL (
    SELECT label, label_time, source FROM labels
    WHERE labels.event_id = p.event_id
    ORDER BY label_time DESC
    LIMIT 1
) AS l ON true;
