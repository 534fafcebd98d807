#!/usr/bin/env bats
# Shell tests against a live kvstore, cthulhu-style: `composer up` leaves the cluster
# running as a directory of control scripts, the tests act through them.
#
#   bats examples/kvstore/bats                           # local processes
#   COMPOSER_CLUSTER=netns bats examples/kvstore/bats    # network namespaces (root)

setup_file() {
    export FIX="$BATS_FILE_TMPDIR/kv"
    composer up "$BATS_TEST_DIRNAME/.." --cluster "${COMPOSER_CLUSTER:-local}" --fixture "$FIX"
}

teardown_file() {
    composer down "$FIX"
}

# the kv client runs on the fixture's client node, which reaches every kv node
kv() {
    "$FIX/client-1/control" exec python3 "$BATS_TEST_DIRNAME/kv.py" "$@"
}

# retry for up to 10 s: replication runs every 0.3 s
eventually() {
    for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    "$@"
}

@test "a write survives a kill and restart of a replica" {
    kv put kv-1 color blue
    eventually kv get kv-2 color blue
    before=$(cat "$FIX/kv-2/pid.txt")
    "$FIX/kv-2/control" kill
    [ "$("$FIX/kv-2/control" status)" = killed ]
    [ "${COMPOSER_CLUSTER:-local}" = docker ] || ! kill -0 "$before" 2>/dev/null  # really gone
    "$FIX/kv-2/control" start
    [ "$(cat "$FIX/kv-2/pid.txt")" != "$before" ]
    eventually kv get kv-2 color blue
}

@test "during a partition the cut-off replica acknowledges no write and gets none" {
    "$FIX/control" partition kv-3 kv-1,kv-2
    run kv put kv-3 shape round
    [ "$status" -eq 1 ]                      # the minority acknowledges nothing
    kv put kv-1 shape square                 # the primary's side goes on
    eventually kv get kv-2 shape square
    run kv get kv-3 shape square
    [ "$status" -eq 1 ]                      # replication cannot reach kv-3
    "$FIX/control" heal
    eventually kv get kv-3 shape square      # and catches up once healed
}
