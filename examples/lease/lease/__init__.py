"""lease: a lock service, a store and workers, with a planted lost-update bug.

Workers take a lease from the lock service (``lock.py``) and, holding it, read a list
from the store (``store.py``), add a job id and write it back (``worker.py``). Planted
bug (on unless ``LEASE_BUG=0``): a worker checks its lease only before the read and
sends no fencing token, so a worker paused between its read and its write for longer
than the lease writes over the update of the worker that took the lease meanwhile.
See ``worker.Worker._run`` and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
