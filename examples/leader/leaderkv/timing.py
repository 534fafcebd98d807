"""Every timing constant of leaderkv, in one place, with why it has the value it has.

No timeout here is below one second: the example must behave the same on a busy 2-core
CI machine, where a healthy peer can take hundreds of milliseconds to answer. A slow
machine may cost an election or a refused write (availability); it never changes what
the fixed twin acknowledges (safety rests on majorities, not on clocks).

They also set how deep the planted bug is. A partition that cuts the leader off must
last about RPC_TIMEOUT (the old leader's first quorum-less acknowledgement) and about
ELECTION_TIMEOUT plus a write (the other side's new leader and its first write) before
it heals; longer timeouts make a uniform random search need more luck.
"""

from __future__ import annotations

#: Seconds between a leader's rounds of appends (heartbeats that also carry new entries).
HEARTBEAT = 0.25
#: Seconds any peer request may take; a peer slower than this "timed out".
RPC_TIMEOUT = 1.0
#: Seconds a follower waits without hearing a leader before it campaigns ...
ELECTION_TIMEOUT = 1.0
#: ... plus this much per place it stands after the last leader in --peers order, so
#: the next node in the ring campaigns first and two candidates rarely split the vote.
RANK_STEP = 0.5
#: Seconds before the very first election, when no node has a term yet: all nodes start
#: together, so the first in --peers order wins at once and setup is quick.
FIRST_ELECTION = 0.5
#: Seconds a leader keeps its job before it hands it to the next caught-up node: this
#: is what makes "the current leader" move around the ring.
TERM_SECONDS = 3.0
#: Seconds a leader refuses writes after asking a successor to take over; if it is
#: still leader after that, the handover failed and it carries on.
HANDOVER_WAIT = 2.0
#: (Fixed twin only.) A leader that has heard from no majority for this long steps down.
LEASE = 2.0
#: The stall detector's period, and the gap in our own execution that means we were
#: paused (SIGSTOP): a node that slept must not campaign on its stale view of the world.
TICK = 0.1
STALL = 1.0
#: Most entries in one append; a follower far behind catches up over several rounds.
MAX_BATCH = 500
