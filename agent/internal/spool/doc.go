// Package spool is the store agent's durable outbox: every captured record lives in one bbolt
// file until the hub has acknowledged it and its retention has passed.
//
// # Basics
//
// A capture source hands [Spool.Commit] its parsed records, its new read offset and the input
// it could not parse. The spool stamps each record with the store id, the spool's epoch, the
// next store-wide seq, the capture time and its hash ([protocol.Record.Seal]) and writes all of
// it in one bbolt transaction. One writer goroutine takes every request that is queued while
// the previous transaction is being fsynced and commits them together (group commit), so many
// concurrent Commits cost one fsync. The forwarder reads with [Spool.Read] or [Spool.ReadRaw]
// from LastAck+1, is woken by [Spool.Notify], and records the hub's acknowledgements with
// [Spool.Ack]. The agent calls [Spool.Purge] periodically.
//
// File layout: buckets meta (version, epoch, next_seq, last_ack, next_quarantine, created_at),
// records (8-byte big-endian seq → record JSON), offsets (source → offset), quarantine (8-byte
// counter → [protocol.Quarantined] JSON) and terminals (terminal → last capture time).
//
// # Guarantees
//
//   - A record is captured when Commit has returned it, and only then: Commit returns after
//     bbolt's commit, fsync included, has returned. NoSync is never used, and bbolt's Batch
//     (which may run a function twice) is not used.
//   - Seqs are store-wide, start at 1, and are gap-free and in commit order; a source's records
//     keep their order. The (store, epoch, seq) of a record never changes.
//   - A source's offset is committed in the same transaction as its records and quarantined
//     input: after any crash the offset matches exactly what was captured.
//   - A commit or fsync error is fatal: every waiter gets an error wrapping [ErrFailed], and
//     every later write is refused. The process must exit and restart; nothing is retried.
//   - Open checks an existing file: bbolt's meta pages and length and the spool's invariants
//     (buckets and meta present, record keys ending at next_seq-1, nothing unacknowledged
//     missing, the unacknowledged tail contiguous, each of its records with its key, epoch and
//     a hash matching its stored bytes). A spool of at most 100,000 records has every record
//     checked, and a file of at most 96 MiB also its every page and bbolt's tx.Check. [Check]
//     runs all of it on demand (`lanebridge-agent check`), and Compact checks every record it
//     copies. A corrupt file is renamed to path+".corrupt-<time>", never written to, and never silently
//     replaced: Open logs at Error, [Stats] carries an alarm, and the new spool gets a new epoch.
//     While a .corrupt- file lies beside the spool, every Open raises an alarm naming it.
//   - A held lock makes Open and [OpenReadOnly] fail with [ErrLocked] after OpenTimeout instead
//     of blocking; such a file is never treated as corrupt.
//   - Nothing is evicted for space. Near MaxSize, Stats alarms and capture goes on. Purge deletes
//     only acknowledged records older than Retention, and only a prefix of seqs, so what is
//     stored is always one contiguous run ending at LastSeq.
//   - Acks never move backwards, are refused for another epoch ([ErrEpochMismatch]) or beyond
//     LastSeq ([ErrAckBeyondLast]), and are fsynced before Ack returns.
//
// # Caveats
//
//   - Commit's context bounds only the hand-over to the writer: once handed over, Commit waits
//     for the outcome, since a caller that gave up could not know whether it was captured.
//   - Commit rejects, whole, a capture with a record that fails
//     [protocol.Record.ValidateBusiness] ([ErrInvalidCapture]): the hub would refuse such a
//     record forever. The caller must quarantine that input instead.
//   - The crash test kills the process; it does not cut power. Durability across power loss
//     rests on bbolt's fdatasync and on the disk honouring it.
//   - bbolt does not checksum data pages. The hash check on Open catches a damaged record, but a
//     damaged free page goes unnoticed (harmlessly), and damage after Open is found only at the
//     next Open.
//   - Corruption can make bbolt panic or fault; the check (package boltfile, shared with the
//     item master and the raw journal) recovers (debug.SetPanicOnFault), but the mmap of the
//     abandoned handle leaks until the process exits. bbolt's tx.Check runs in a goroutine
//     nothing can recover: every page is walked first so that a page that would crash it has
//     already been caught, but a crash there remains possible in principle, and then the agent
//     restarts and crashes again rather than start empty.
//   - Open's check of a big spool covers what has still to reach the hub: damage to an
//     acknowledged record (at the hub already) is found by Check, by a compaction, or by the
//     hub refusing it in a replay, not at Open. A freelist naming a page in use is found by
//     bbolt's tx.Check, which Open runs only on files up to 96 MiB.
//   - bbolt v1.4.3 has no MaxSize option: a full disk surfaces as a failed commit (fatal), and
//     bbolt never shrinks a file; Purge frees pages for reuse and then compacts the file
//     (Compact) when the free pages are more than a fifth of it and at least 4 MiB. Between
//     the close of the old file and the open of the new one the file lock is not held. SizeBytes is the file's length:
//     with the 64 MiB initial mmap (not on Windows) bbolt grows the file in 16 MiB steps, so
//     even a small spool is about 16 MiB long (sparse on Linux). The size alarm therefore
//     follows UsedBytes, bbolt's high-water mark, not the length.
//   - Purge stops at the first record that is too young; if the clock jumped back, older records
//     behind it wait until that one ages out.
//   - A corruption alarm raised at Open lives in memory; after a restart it is the .corrupt-
//     file beside the spool that keeps it raised. The hub also sees the epoch change.
//   - Purge takes bbolt's write lock for up to 5000 deletions at a time, delaying commits.
//   - The quarantine bucket is never purged.
//   - On Windows a corrupt file whose handle leaked after a panic may not be renamable: Open then
//     fails, and the operator must move the file.
package spool
