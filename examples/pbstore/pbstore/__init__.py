"""pbstore: a primary-backup key-value store whose planted bug needs a network partition.

The first address of ``--peers`` is the primary of epoch 1. The primary replicates
every write synchronously to every backup; backups probe the primary and the most
caught-up one takes over (a newer epoch) when it stops answering. A former primary
that hears of a newer epoch steps down and copies the new primary's log.

Planted bug (on unless ``PBSTORE_BUG=0``): when replication to a backup *times out*,
the primary acknowledges the write anyway. Behind a partition the backups elect a new
primary; when it heals, the old primary resynchronises and those acknowledged writes
are gone. Kills, stops and pauses never lose them. See ``node.Node.put`` and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
