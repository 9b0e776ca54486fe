-- The table the csv-postgres example upserts into: run once before the pipeline.
--   psql "$PG_URL" -f examples/pipelines/csv-postgres/schema.sql
CREATE TABLE IF NOT EXISTS customers (
    id text PRIMARY KEY,
    name text NOT NULL,
    country char(2) NOT NULL,
    tier text NOT NULL CHECK (tier IN ('bronze', 'silver', 'gold'))
);
