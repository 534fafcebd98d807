"""kvstore: a tiny primary/replica key-value store with a planted durability bug.

The first address of ``--peers`` is the primary: it takes writes, appends each one to
a log file in its data directory and replicates it to the other peers (replicas)
before acknowledging. Replicas keep their own log and serve (possibly stale) reads.

Planted bug (on unless ``KVSTORE_BUG=0``): a write that reaches the primary while a
write of another writer is still in flight is acknowledged at once from memory and made
durable only ~0.5 s later ("group commit"). SIGKILL the primary in that window and
acknowledged writes are gone after the restart. See ``store.Store.put`` and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
