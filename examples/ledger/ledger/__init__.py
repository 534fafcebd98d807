"""ledger: a tiny append-only ledger with a write-ahead log and a planted durability bug.

Every append is written to a write-ahead log (``wal.log``) before it is acknowledged.
Every SNAPSHOT_EVERY appends the node compacts: it writes the whole ledger to a
snapshot file and cuts the log, so a restart reads one snapshot and a short log.

Planted bug (on unless ``LEDGER_BUG=0``): the compaction cuts the log *before* the new
snapshot is in place, so a SIGKILL in the ~0.2 s the snapshot takes to write loses
every append acknowledged since the previous snapshot. See ``store.Ledger.snapshot``
and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
