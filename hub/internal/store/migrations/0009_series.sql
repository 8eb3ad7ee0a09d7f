-- Chart data: per store, metric and bucket (res seconds wide, starting at bucket, Unix
-- seconds), the sum, count, max and last of what was observed in it. Minute buckets (res 60)
-- and hour buckets (res 3600) are written together by AddSeries; PruneSeries drops old ones.
CREATE TABLE series (
    store  text   NOT NULL,
    metric text   NOT NULL,
    res    bigint NOT NULL,
    bucket bigint NOT NULL,
    sum    bigint NOT NULL,
    count  bigint NOT NULL,
    max    bigint NOT NULL,
    last   bigint NOT NULL,
    PRIMARY KEY (store, metric, res, bucket)
) {{rowid}};
CREATE INDEX series_age ON series (res, bucket);
