"""composer's Getting Started for pytest: a node, a file, a command (clustertest's hello).

    pytest examples/hello-pytest                            # nodes are local processes
    sudo pytest examples/hello-pytest --composer-cluster netns
    pytest examples/hello-pytest --composer-cluster agents --composer-agents agents.toml
    pytest examples/hello-pytest --composer-cluster aws      # an EC2 instance per node
"""


def test_hello(cluster):  # the fixture from composer's pytest plugin
    node = cluster.new_node()
    path = node.root / "hello"
    node.send_file(path, b"Hello, world!")
    result = node.run(["cat", str(path)])
    assert result.exit_code == 0 and result.stdout == b"Hello, world!"


def test_two_nodes_talk(cluster):
    server, client = cluster.new_nodes(2)
    echo = server.start(["python3", "-c", (
        "import socket, sys\n"
        "with socket.create_server((sys.argv[1], 7000)) as s:\n"
        "    conn, _ = s.accept()\n"
        "    conn.sendall(conn.recv(100).upper())\n"), server.address])
    reply = client.run(["python3", "-c", (
        "import socket, sys, time\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        c = socket.create_connection((sys.argv[1], 7000)); break\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
        "c.sendall(b'hello'); print(c.recv(100).decode())\n"), server.address], check=True)
    assert reply.stdout == b"HELLO\n"
    assert echo.wait(timeout=10) == 0
