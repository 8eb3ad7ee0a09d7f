package store

import (
	"context"
	"time"
)

// Series resolutions: the width of a bucket. AddSeries writes both; charts of up to a day
// read minute buckets, longer ones hour buckets.
const (
	SeriesMinute = time.Minute
	SeriesHour   = time.Hour
)

// SeriesPoint is one bucket of one metric of a store: what was observed in the bucket
// starting at Bucket (a whole minute or hour, UTC). Sum, Count and Max add up across points of
// a bucket; Last is the one written last.
type SeriesPoint struct {
	Store  string    `json:"-"`
	Metric string    `json:"-"`
	Bucket time.Time `json:"t"`
	Sum    int64     `json:"sum"`
	Count  int64     `json:"count"`
	Max    int64     `json:"max"`
	Last   int64     `json:"last"`
}

// AddSeries merges minute aggregates into their minute and hour buckets, in one transaction:
// sums and counts add, max keeps the larger, last takes the new value. A point's Bucket is
// truncated to its minute.
func (s *DB) AddSeries(ctx context.Context, points []SeriesPoint) error {
	if len(points) == 0 {
		return nil
	}
	return wrapf(s.write(ctx, func(t tx) error {
		for _, p := range points {
			for _, res := range []time.Duration{SeriesMinute, SeriesHour} {
				if _, err := t.exec(ctx, `INSERT INTO series (store, metric, res, bucket, sum, count, max, last)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (store, metric, res, bucket) DO UPDATE SET sum = series.sum + excluded.sum,
						count = series.count + excluded.count, last = excluded.last,
						max = CASE WHEN excluded.max > series.max THEN excluded.max ELSE series.max END`,
					p.Store, p.Metric, int64(res.Seconds()), p.Bucket.Truncate(res).Unix(), p.Sum, p.Count, p.Max, p.Last); err != nil {
					return err
				}
			}
		}
		return nil
	}), "add %d series points", len(points))
}

// Series returns a store's buckets of one metric at resolution res (SeriesMinute or
// SeriesHour) starting in [from, to), oldest first; buckets without observations are absent.
func (s *DB) Series(ctx context.Context, store, metric string, res time.Duration, from, to time.Time) ([]SeriesPoint, error) {
	var out []SeriesPoint
	err := s.read(ctx, func(t tx) (err error) {
		rs, err := t.query(ctx, `SELECT bucket, sum, count, max, last FROM series
			WHERE store = ? AND metric = ? AND res = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`,
			store, metric, int64(res.Seconds()), from.Unix(), to.Unix())
		out, err = scanAll(rs, err, func(r rows, p *SeriesPoint) error {
			var b int64
			p.Store, p.Metric = store, metric
			err := r.Scan(&b, &p.Sum, &p.Count, &p.Max, &p.Last)
			p.Bucket = time.Unix(b, 0).UTC()
			return err
		})
		return err
	})
	return out, wrapf(err, "read series %s of %s", metric, store)
}

// PruneSeries deletes minute buckets older than minuteBefore and hour buckets older than
// hourBefore; it returns how many it deleted.
func (s *DB) PruneSeries(ctx context.Context, minuteBefore, hourBefore time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM series WHERE (res = ? AND bucket < ?) OR (res = ? AND bucket < ?)`,
		int64(SeriesMinute.Seconds()), minuteBefore.Unix(), int64(SeriesHour.Seconds()), hourBefore.Unix())
	return n, wrapf(err, "prune series")
}

// The metrics of the chart data.
const (
	// MetricThroughput counts records applied: Sum records, Count batches, Max the largest batch.
	MetricThroughput = "throughput"
	// MetricLatency is capture→applied of applied records in milliseconds: Sum and Count give
	// the mean, Max the slowest record.
	MetricLatency = "latency"
	// MetricBacklog is the agent's unsent records per status: Max the largest, Last the latest.
	MetricBacklog = "backlog"
)
