#!/usr/bin/env python3
"""One Testground instance: serve an echo port, register through the sync service, learn
every peer's data-network address from a topic, ask for PING_LATENCY_MS of latency on
this node's own link, wait until every runner has, ping every peer, and assert that each
round trip is at least the configured latency. Then signal done and wait for all; the
last to get there says setup is complete.

A runner restarted after a fault (its registration comes after every first one) only
serves: its link is still shaped, and its peers may be down at that moment."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import composer_sdk as sdk
from composer_sdk import sync
from ping_common import LATENCY_MS, PORT, SHAPE, round_trip

TIMEOUT = 60.0


def serve_echo(host: str) -> None:
    server = socket.create_server((host, PORT))

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(64):
                conn.sendall(data)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def main() -> None:
    host = os.environ["COMPOSER_HOST"]  # this node's address on the data network
    count = int(os.environ["TEST_INSTANCE_COUNT"])
    serve_echo(host)
    seq = sync.signal_entry("registered", TIMEOUT)
    if seq > count:  # restarted during the timeline
        while True:
            time.sleep(3600)
    sync.publish("peers", {"seq": seq, "host": host}, TIMEOUT)
    peers = [p["host"] for p in sync.subscribe("peers", count, TIMEOUT) if p["host"] != host]
    if SHAPE:
        sync.configure_network(latency=LATENCY_MS / 1000, callback_state="network-configured",
                               timeout=TIMEOUT)
    sync.signal_and_wait("configured", count, TIMEOUT)
    with ThreadPoolExecutor(len(peers) or 1) as pool:  # every peer at once
        rtts = list(pool.map(round_trip, peers))
    for peer, rtt in zip(peers, rtts):
        print(f"{host} -> {peer}: {rtt * 1000:.1f} ms (asked {LATENCY_MS:g} ms)", flush=True)
        sdk.always(rtt * 1000 >= LATENCY_MS, "Every round trip is at least the configured latency",
                   {"from": host, "to": peer, "rtt_ms": round(rtt * 1000, 1),
                    "latency_ms": LATENCY_MS, "shaped": SHAPE})
    if sync.signal_entry("done", TIMEOUT) == count:
        sdk.setup_complete({"runners": count, "latency_ms": LATENCY_MS})
    sync.barrier("done", count, TIMEOUT)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
