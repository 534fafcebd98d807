"""leaderkv: a replicated key-value map with a moving leader and a planted bug.

Three nodes run a small Raft (``node.py``, ``leading.py``): a leader takes writes and
acknowledges one when a majority stored it; the leader hands over to the next node every
few seconds, and the others elect a new one when it goes silent.

Planted bug (on unless ``LEADER_BUG=0``): a leader whose followers all TIME OUT
acknowledges the write anyway and never checks it still has a majority. A partition that
cuts off the current leader, with a write on each side, loses acknowledged writes when it
heals. See ``leading.Leadership.write`` and README.md.

Standard library only, plus ``sdk`` (composer's Antithesis-compatible SDK).
"""
