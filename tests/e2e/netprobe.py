"""A network probe run on cluster nodes by the network fault tests.

    netprobe.py serve HOST PORT       TCP accept on HOST:PORT; print "udp NAME" per datagram there
    netprobe.py tcp HOST:PORT ...     print "ok HOST" or "fail HOST" per TCP connect (0.5 s timeout)
    netprobe.py udp COUNT GAP NAME HOST:PORT ...   send COUNT datagrams "NAME" to each, GAP s apart
                                      ("{i}" in NAME: the datagram's number)
    netprobe.py send BYTES HOST:PORT  send BYTES over TCP, wait until the server read them all,
                                      print the seconds it took
    netprobe.py rtt COUNT HOST:PORT   print the seconds each of COUNT TCP connects took (one
                                      round trip: SYN out, SYN-ACK back)
"""

import socket
import sys
import threading
import time


def serve(host: str, port: int) -> None:
    listener = socket.create_server((host, port))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, port))

    def drain(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
        conn.close()

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("ready", flush=True)
    while True:
        data, _ = udp.recvfrom(64)
        print("udp", data.decode(), flush=True)


def tcp(targets: list[str]) -> None:
    for target in targets:
        host, port = target.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            print("ok", host, flush=True)
        except OSError:
            print("fail", host, flush=True)


def udp(count: int, gap: float, source: str, targets: list[str]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        for target in targets:
            host, port = target.rsplit(":", 1)
            sock.sendto(source.replace("{i}", str(i)).encode(), (host, int(port)))
        time.sleep(gap)


def send(size: int, target: str) -> None:
    host, port = target.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(b"x" * size)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the server closes once it has read everything
    print(f"{time.monotonic() - started:.3f}", flush=True)


def rtt(count: int, target: str) -> None:
    host, port = target.rsplit(":", 1)
    for _ in range(count):
        started = time.monotonic()
        socket.create_connection((host, int(port)), timeout=30).close()
        print(f"{time.monotonic() - started:.4f}", flush=True)
        time.sleep(0.05)


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "rtt":
        rtt(int(rest[0]), rest[1])
    elif mode == "serve":
        serve(rest[0], int(rest[1]))
    elif mode == "tcp":
        tcp(rest)
    elif mode == "send":
        send(int(rest[0]), rest[1])
    else:
        udp(int(rest[0]), float(rest[1]), rest[2], rest[3:])
