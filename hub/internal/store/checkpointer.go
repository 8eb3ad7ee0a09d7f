package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite's WAL is copied back into the database file by a checkpoint. By default the writer
// runs one itself, inside the commit that takes the WAL past 1,000 pages: the copy and the
// database file's fsync then sit in the commit path of one group and delay every ack of it.
// Here the writer connection has wal_autocheckpoint 0 and a checkpointer does it on a
// connection of its own, beside the next group commit (PASSIVE: it never blocks the writer
// or the readers). Durability does not change: a commit is durable when its WAL frames are
// fsynced (synchronous=FULL), checkpointed or not.
//
// Under a write load without pauses a passive checkpoint never catches up with the end of the
// WAL, so the WAL would only grow (SQLite restarts it only when a writer begins after a
// checkpoint that copied it all). So the writer checkpoints itself, as SQLite would, when the
// WAL has passed walWriterPages.

const (
	walWriterPages  = 16000 // ~64 MiB of 4 KiB pages: the writer checkpoints itself
	checkpointEvery = 50 * time.Millisecond
)

// checkpointer checkpoints one database's WAL in the background; commit tells it the WAL grew.
type checkpointer struct {
	db     *sql.DB // one connection, for checkpoints only
	kick   chan struct{}
	frames atomic.Int64 // frames in the WAL at the last checkpoint (SQLite restarts it once all are copied)
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	err    atomic.Value // last checkpoint error (string), for tests and logs

	checkpoints atomic.Int64 // checkpoints run, for tests
}

func startCheckpointer(ctx context.Context, path, pragmas string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+"?"+pragmas)
	if err != nil {
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.run(cctx)
	return c, nil
}

// committed is called by the writer after each commit. It wakes the checkpointer and, when the
// WAL has outgrown walWriterPages, checkpoints on the writer's own connection (wdb), which is
// free again now.
func (c *checkpointer) committed(ctx context.Context, wdb *sql.DB) {
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if c.frames.Load() < walWriterPages {
		return
	}
	c.checkpoint(context.WithoutCancel(ctx), wdb)
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		c.checkpoint(ctx, c.db)
		select { // at most one checkpoint per interval: commits come in bursts
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkpoint runs a passive checkpoint on db and records what the WAL holds after it.
func (c *checkpointer) checkpoint(ctx context.Context, db *sql.DB) {
	var busy, log, done int64 // done: frames copied; the rest wait for readers of old snapshots
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
		if ctx.Err() == nil {
			c.err.Store(err.Error())
		}
		return
	}
	c.frames.Store(max(log, 0)) // -1: not in WAL mode
	c.checkpoints.Add(1)
}

func (c *checkpointer) close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
	return c.db.Close()
}
