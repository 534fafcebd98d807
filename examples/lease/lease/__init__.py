"""lease: a lock service, a store and workers, with a planted lost-update bug.

Workers post items to a shared board in the store (``store.py``), each under a lease
from the lock service (``lock.py``); every 20th item, the worker that posted it also
tidies the board: a read-modify-write of the whole list under the same lease
(``worker.py``). Planted bug (on unless ``LEASE_BUG=0``): a worker checks its lease
only before the tidy's read and sends no fencing token, so a worker paused inside the
tidy for longer than the lease writes a stale list over the items the other workers
posted meanwhile. See ``worker.Worker._tidy`` and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
