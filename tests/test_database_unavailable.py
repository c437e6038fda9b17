"""A database outage answers 503 quickly, and the same process recovers when it is back."""

import contextlib
import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from deployments_api import create_app

from .servers import free_port

pytestmark = pytest.mark.postgres_only

PROMPT_SECONDS = 5


class TcpProxy:
    """Forwards a local port to the database; `stop` is the database going away."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        # The same port again right after `stop`, despite connections in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is None:
            return
        with self._lock:
            sockets = [self._listener, *self._connections]
            self._listener = None
            self._connections.clear()
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._connections.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    # shutdown() first: it wakes a thread blocked in accept()/recv() on this socket.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(database_url):
    url = make_url(database_url)
    running = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def proxied_app(database_url, proxy):
    """An app whose only way to the test database is through the proxy."""
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    app = create_app(
        {"DATABASE_URL": url.render_as_string(hide_password=False), "RATE_LIMIT_PER_MINUTE": 0}
    )
    yield app
    app.extensions["deployments_db"].engine.dispose()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_database_outage_answers_503_and_recovers_without_a_restart(api, proxy, proxied_app):
    token = api.user()
    client = proxied_app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    requests = {
        "readyz": lambda: client.get("/readyz"),
        "list EAs": lambda: client.get("/api/v1/eas", headers=auth),
    }

    def assert_all(expected_status):
        for name, call in requests.items():
            response, seconds = timed(call)
            assert response.status_code == expected_status, (name, response.get_json())
            assert seconds < PROMPT_SECONDS, (name, seconds)
            if expected_status == 503:
                assert response.get_json()["detail"] == "database_unavailable", name
        assert client.get("/healthz").status_code == 200

    assert_all(200)

    proxy.stop()
    before = api.row_counts()
    assert_all(503)
    response, seconds = timed(lambda: client.post("/api/v1/eas", headers=auth, json={"name": "X"}))
    assert (response.status_code, response.get_json()["detail"]) == (503, "database_unavailable")
    assert seconds < PROMPT_SECONDS
    assert api.row_counts() == before

    proxy.start()
    assert_all(200)
    created = client.post("/api/v1/eas", headers=auth, json={"name": "After the outage"})
    assert created.status_code == 201
