"""Reading docker-compose files: what Antithesis users already have is accepted as compose
does it, and what composer cannot honour is refused with a message naming the key."""

from __future__ import annotations

import pytest

from composer import compose
from composer.errors import ConfigError


def _load(tmp_path, text: str, env: dict | None = None, monkeypatch=None):
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "docker-compose.yml").write_text(text)
    return compose.load(tmp_path / "docker-compose.yml")


def _error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_services_come_in_dependency_order_with_their_settings(tmp_path):
    (tmp_path / "client").mkdir()
    (tmp_path / "conf").mkdir()
    read = _load(tmp_path, """
name: Shop
services:
  client:
    build: ./client
    entrypoint: python3 /opt/client/main.py --fast
    environment:
      - ENDPOINT=http://db:2379
      - EMPTY=
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  cache:
    image: redis:7
    command: ["redis-server", "--port", 6380]
    volumes: ["./conf:/etc/redis:ro", "cachedata:/data"]
  db:
    image: etcd:3.4
    environment: {ETCD_NAME: db, DEBUG: true}
    healthcheck:
      test: ["CMD", "etcdctl", "endpoint", "health"]
      interval: 1s
      timeout: 1m30s
volumes:
  cachedata: {}
""")
    assert read.name == "shop"
    assert [s.name for s in read.services] in (["cache", "db", "client"], ["db", "cache", "client"])
    client, cache, db = read.service("client"), read.service("cache"), read.service("db")
    assert client.image == "composer-shop-client:latest" and client.build.context == tmp_path / "client"
    assert client.entrypoint == ("python3", "/opt/client/main.py", "--fast")
    assert dict(client.environment) == {"ENDPOINT": "http://db:2379", "EMPTY": ""}
    assert cache.command == ("redis-server", "--port", "6380")
    assert cache.mounts[0] == compose.Mount(str(tmp_path / "conf"), "/etc/redis", read_only=True)
    assert cache.mounts[1] == compose.Mount("cachedata", "/data", volume=True)
    assert dict(db.environment) == {"ETCD_NAME": "db", "DEBUG": "true"}
    assert db.healthcheck.test == ("CMD", "etcdctl", "endpoint", "health")
    project = compose.project_of(read, drivers={"client"})
    assert project.driver_nodes() == ["client"]
    assert sorted(project.fault_targets()) == ["cache", "db"]  # not where commands run
    assert project.service("db").ready.command == "etcdctl endpoint health"
    assert project.service("client").after_ready == ("db",)
    assert project.setup.sdk and project.setup.timeout == 120
    assert "entrypoint" in project.setup.hint  # not the composer.toml advice
    assert project.service("db").image == read.service("db").image
    assert project.backend == "compose" and project.cluster_options == {"compose": read}
    assert project.location == read.path  # a replay finds the file again


def test_variables_are_filled_from_the_environment_and_dot_env(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("TAG=3.5\n# comment\nPORT='2379'\n")
    monkeypatch.delenv("MISSING", raising=False)
    read = _load(tmp_path, """
services:
  db:
    image: "etcd:${TAG}"
    command: "serve --port $PORT --node ${NODE:-default-node} --cost $$5 ${MISSING-}"
""", {"NODE": "n1"}, monkeypatch)
    assert read.service("db").image == "etcd:3.5"
    assert read.service("db").command == ("serve", "--port", "2379", "--node", "n1", "--cost", "$5")


def test_a_required_variable_that_is_unset_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY", raising=False)
    message = _error(tmp_path, "services:\n  a:\n    image: ${REGISTRY:?set REGISTRY}/a\n")
    assert "REGISTRY" in message and "set REGISTRY" in message


@pytest.mark.parametrize("text, words", [
    ("services:\n  a:\n    image: x\n    deploy: {replicas: 2}\n", ["services.a.deploy", "not supported", "supported:"]),
    ("services:\n  a:\n    image: x\nsecrets: {}\n", ["top-level key 'secrets'"]),
    ("services:\n  a:\n    command: run\n", ["services.a needs an image or a build"]),
    ("services:\n  a:\n    image: x\n    depends_on: [b]\n", ["no service 'b'"]),
    ("services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_healthy}}\n"
     "  b:\n    image: y\n", ["service_healthy", "b has no healthcheck"]),
    ("services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_completed_successfully}}\n"
     "  b:\n    image: y\n", ["service_completed_successfully", "not supported"]),
    ("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    depends_on: [a]\n",
     ["depends_on cycle", "a -> b -> a"]),
    ("services:\n  a:\n    image: x\n    volumes: [data:/data]\n", ["volume 'data' is not declared"]),
    ("services:\n  a:\n    image: x\n    volumes: [/data]\n", ["anonymous volumes"]),
    ("services:\n  a:\n    image: x\n    healthcheck: {test: [CURL, x]}\n", ["healthcheck.test"]),
    ("services:\n  a:\n    image: x\n    healthcheck: {test: true, interval: soon}\n", ["healthcheck.test"]),
    ("services:\n  a:\n    image: x\n    healthcheck: {test: 'true', interval: soon}\n", ["interval", "not a duration"]),
    ("services:\n  a:\n    build: ./nowhere\n", ["is not a directory"]),
    ("services:\n  Bad Name:\n    image: x\n", ["service names"]),
    ("services: [a, b]\n", ["top-level 'services:' mapping"]),
    ("services:\n  a:\n    image: x\n   bad: indent\n", ["malformed YAML"]),
])
def test_what_composer_cannot_honour_is_refused_naming_the_key(tmp_path, text, words):
    message = _error(tmp_path, text)
    assert str(tmp_path / "docker-compose.yml") in message
    for word in words:
        assert word in message, message


def test_keys_meaningless_on_a_private_network_are_noted_and_ignored(tmp_path):
    read = _load(tmp_path, """
services:
  web:
    image: nginx
    ports: ["8080:80"]
    restart: always
    x-team: storage
    healthcheck: {disable: true}
""")
    assert any("services.web.ports ignored" in note for note in read.notes)
    assert any("services.web.restart ignored" in note for note in read.notes)
    assert read.service("web").healthcheck is None


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="no such compose file"):
        compose.load(tmp_path / "docker-compose.yml")
