#!/usr/bin/env python3
"""The sync service's speed: barrier latency and publish/subscribe throughput.

    python3 tests/benchmarks/bench_sync.py [--rounds N] [--messages N] [--no-shaper]

A sync service on loopback (``composer.sync_service``, in a loop of its own thread, as
a run holds it) and clients of the SDK (``composer_sdk.sync``, one connection each, in
threads). Barrier: 10 and 100 participants each enter a state and wait for all; the
latency is from the last entry to each participant's release, median and p99 over N
rounds. Publish/subscribe: one publisher, 10 subscribers on one topic, messages per
second delivered (anchor: Testground's Redis-backed service, about 300k ops/s at peak by
its own account; this is one Python process). Then, as root, the packet shaper that
stands in for netem (``bench_packet_shaper.py``): packets/s it sustains and the CPU it
adds at 1k and 10k packets/s. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from composer.sync_service import SyncService  # noqa: E402
from composer_sdk.sync import SyncClient  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import log, table  # noqa: E402


def serve() -> tuple[SyncService, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    service = asyncio.run_coroutine_threadsafe(SyncService().start(), loop).result(30)
    return service, loop


def barrier_latencies(url: str, participants: int, rounds: int) -> list[float]:
    """Milliseconds from the last signal_entry of a round to each participant's release."""
    latencies: list[float] = []
    clients = [SyncClient(url, prefix="bench") for _ in range(participants)]
    try:
        with ThreadPoolExecutor(participants) as pool:
            for round_ in range(rounds):
                entered: list[float] = []
                lock = threading.Lock()

                def one(client: SyncClient) -> float:
                    state = f"round-{participants}-{round_}"
                    client.signal_entry(state)
                    with lock:
                        entered.append(time.monotonic())
                    client.barrier(state, participants, timeout=60)
                    return time.monotonic()

                released = list(pool.map(one, clients))
                last = max(entered)
                latencies += [max(0.0, r - last) * 1000 for r in released]
    finally:
        for client in clients:
            client.close()
    return latencies


def pubsub_rate(url: str, subscribers: int, messages: int) -> float:
    """Messages delivered per second (to all subscribers together)."""
    ready = threading.Barrier(subscribers + 1)

    def subscriber(_: int) -> int:
        with SyncClient(url, prefix="bench") as client:
            stream = client.subscribe("topic", count=messages, timeout=60)
            ready.wait()
            return sum(1 for _ in stream)

    with ThreadPoolExecutor(subscribers) as pool:
        futures = [pool.submit(subscriber, i) for i in range(subscribers)]
        ready.wait()
        began = time.monotonic()
        with SyncClient(url, prefix="bench") as publisher:
            for i in range(messages):
                publisher.publish("topic", {"n": i})
        delivered = sum(f.result() for f in futures)
    return delivered / (time.monotonic() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--no-shaper", action="store_true",
                        help="skip the packet shaper's figures (they need root)")
    args = parser.parse_args(argv)
    service, loop = serve()
    rows = []
    for participants in (10, 100):
        log(f"barrier: {participants} participants, {args.rounds} rounds")
        ms = sorted(barrier_latencies(service.url, participants, args.rounds))
        rows.append([str(participants), f"{statistics.median(ms):.1f}",
                     f"{ms[int(len(ms) * 0.99) - 1]:.1f}"])
    print(table(f"Barrier latency after the last entry, ms ({args.rounds} rounds)",
                ["participants", "median", "p99"], rows))
    log(f"publish/subscribe: {args.messages} messages, 10 subscribers")
    rate = pubsub_rate(service.url, 10, args.messages)
    print(table("Publish/subscribe, one topic", ["subscribers", "messages delivered/s"],
                [["10", f"{rate:,.0f}"]]))
    asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
    if not args.no_shaper:
        import bench_packet_shaper

        log("packet shaper: UDP through it at 1k, 10k, 50k packets/s and unpaced")
        bench_packet_shaper.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
