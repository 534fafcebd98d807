"""Two ducktape-style services: examples/kvstore's store on three nodes, a load generator
on a fourth, and a bounce of the primary while it writes.

    pytest examples/kvstore-services                          # nodes are local processes
    sudo pytest examples/kvstore-services --composer-cluster netns

``KvService`` and ``LoadGen`` are ``composer.Service`` subclasses: each says how to
start one node and how to tell it is up; ``start``, ``bounce``, ``wait`` and ``stop``
come from composer. The programs are copied to their nodes (``send_file``), so the same
test runs on every backend with a python3 on its nodes. The load generator's results
give the throughput before, during and after the bounce; they are printed and recorded
as junit.xml properties. After a failure, the nodes' logs are in the test's
``tmp_path/services/<service>/<node>/`` and listed in junit.xml.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import composer
import composer_sdk

HERE = Path(__file__).resolve().parent
#: the store's package (examples/kvstore/kvstore) and the SDK it reports through
PACKAGES = [HERE.parent / "kvstore" / "kvstore", Path(composer_sdk.__file__).parent]
PORT = 7000


def ship(node: composer.Node, packages: list[Path]) -> Path:
    """Copy each package's modules to ``<node root>/app/<package>/``; return ``app``."""
    app = node.root / "app"
    for package in packages:
        modules = sorted(package.glob("*.py"))
        if not modules:
            raise FileNotFoundError(f"{package}: no Python modules to copy; run the example "
                                    "from composer's source tree (examples/kvstore beside it)")
        for module in modules:
            node.send_file(app / package.name / module.name, module)
    return app


def request(node: composer.Node, method: str, path: str, timeout: float = 2.0) -> dict:
    """One JSON request to kvstore on ``node``, through ``node.dial`` (any backend)."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = node.dial(PORT, timeout=timeout)
            self.sock.settimeout(timeout)

    connection = Connection(node.address, PORT, timeout=timeout)
    try:
        connection.request(method, path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class KvService(composer.Service):
    """kvstore: the first node is the primary, the others replicas (examples/kvstore)."""

    num_nodes = 3
    logs = {"kv.log": "data/kv.log"}  # the store's write log, beside its stderr

    def start_node(self, node: composer.Node) -> None:
        app = ship(node, PACKAGES)
        peers = ",".join(f"{n.address}:{PORT}" for n in self.nodes)
        self.start_process(node, [
            "python3", "-m", "kvstore", "--listen", f"{node.address}:{PORT}",
            "--peers", peers, "--data", str(self.data_dir(node))],
            env={"PYTHONPATH": str(app), "KVSTORE_BUG": "0"})  # the durable store

    def alive(self, node: composer.Node) -> bool:
        return "role" in request(node, "GET", "/health", timeout=0.5)


class LoadGen(composer.Service):
    """One writer to ``kv``'s primary for ``seconds``, then a read-back (loadgen.py)."""

    num_nodes = 1

    def __init__(self, cluster: composer.Cluster, kv: KvService, seconds: float = 4.0,
                 warmup: float = 1.0) -> None:
        super().__init__(cluster)
        self.kv, self.seconds, self.warmup = kv, seconds, warmup

    def start_node(self, node: composer.Node) -> None:
        node.send_file(node.root / "loadgen.py", HERE / "loadgen.py")
        self.start_process(node, [
            "python3", str(node.root / "loadgen.py"), "--primary",
            f"{self.kv.nodes[0].address}:{PORT}", "--seconds", str(self.seconds),
            "--warmup", str(self.warmup)])

    def alive(self, node: composer.Node) -> bool:
        """Up once it has written for ``warmup`` seconds: there is a "before"."""
        process = self.processes(node)[0]
        return b"warm\n" in process.stdout or process.exit_code == 0

    def wait_node(self, node: composer.Node, timeout_sec: float) -> bool:
        if not super().wait_node(node, timeout_sec):
            return False
        self.results.update(json.loads(self.processes(node)[0].stdout.splitlines()[-1]))
        return True


def throughput(acks: list[float], began: float, ended: float) -> dict[str, float]:
    """Acknowledged writes per second before, during and after [began, ended]."""
    before = [t for t in acks if t < began]
    during = [t for t in acks if began <= t <= ended]
    after = [t for t in acks if t > ended]

    def rate(times: list[float], start: float, end: float) -> float:
        return round(len(times) / (end - start), 1) if end > start else 0.0

    return {"before": rate(before, acks[0], began) if before else 0.0,
            "during": rate(during, began, ended),
            "after": rate(after, ended, acks[-1]) if after else 0.0,
            "bounce_seconds": round(ended - began, 3)}


def test_bounce_under_load(cluster, record_property):
    kv = KvService(cluster, num_nodes=3)
    load = LoadGen(cluster, kv)
    kv.start()
    load.start()
    began = time.time()
    kv.bounce(kv.nodes[0])  # the primary: writes fail until it is back
    ended = time.time()
    load.wait()
    kv.stop()

    assert load.results["acked"] > 0
    assert load.results["acked"] == load.results["read_back"]
    figures = throughput(load.results["acks"], began, ended)
    for name, value in figures.items():
        record_property(f"throughput_{name}", value)
    print(f"writes/s before {figures['before']}, during the {figures['bounce_seconds']}s "
          f"bounce {figures['during']}, after {figures['after']}; "
          f"{load.results['failed']} writes refused")
