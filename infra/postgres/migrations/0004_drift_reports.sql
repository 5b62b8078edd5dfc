-- Drift reports per model version and window (the drift monitor): 0001 made the table with the whole report in
-- payload; these columns are what readers select by (a model version's reports over a time range). Written with
-- INSERT ... ON CONFLICT (report_id) DO UPDATE: report_id is derived from model, version and window start, so
-- a window closed again after a crash replaces its report. Per-feature results stay in payload->'metrics'.
ALTER TABLE drift_reports ADD COLUMN model_name text;
ALTER TABLE drift_reports ADD COLUMN model_version text;
ALTER TABLE drift_reports ADD COLUMN window_start timestamptz;
ALTER TABLE drift_reports ADD COLUMN window_end timestamptz;
ALTER TABLE drift_reports ADD COLUMN status text;
ALTER TABLE drift_reports ADD COLUMN late_predictions bigint NOT NULL DEFAULT 0;

CREATE INDEX drift_reports_model_window_idx ON drift_reports (model_name, model_version, window_start);
