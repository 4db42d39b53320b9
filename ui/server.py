"""Running the API: which tokens, which socket, then uvicorn (one process, or N workers).

The socket is bound here, before uvicorn starts, so a port in use is one clear error
(:class:`PortInUse`) instead of a server that logs a traceback and exits. With ``workers > 1``
uvicorn's supervisor starts N processes that accept on that one socket; each builds its own
Recommender from the same settings, and restarts when it dies. They share no memory, so the
settings must put conversations and memories in shared stores (:func:`check_workers`).
"""

from __future__ import annotations

import errno
import functools
import os
import socket
from collections.abc import Mapping
from typing import Any

from crs import Recommender, Settings
from crs.ui.tenants import Tokens, parse_tokens, tokens_from

__all__ = ["NoTokens", "PortInUse", "WorkersNeedSharedStores", "bind", "check_port", "check_workers", "resolve_tokens",
           "run"]


#: Idle keep-alive connections are closed after this. Clients close theirs sooner (httpx: 5 s,
#: the same as uvicorn's default, so a request sent just as the server closed failed with a reset).
KEEP_ALIVE_SECONDS = 30


class PortInUse(OSError):
    """The address cannot be bound; the message names the port and the option to change."""


class NoTokens(ValueError):
    """Authentication is on and no tenant has a token."""


class WorkersNeedSharedStores(ValueError):
    """More than one worker over stores that only one process may use."""


def check_workers(settings: Settings, workers: int) -> int:
    """``workers`` if the settings allow that many processes, else a clear error.

    One process may use the embedded stores (a SQLite file, an embedded Chroma folder); several
    need PostgreSQL (``checkpoints_url``) and a Chroma server (``memory_host``, or ``memory = false``).
    """
    if workers < 1:
        raise WorkersNeedSharedStores(f"--workers must be at least 1, got {workers}")
    if workers == 1:
        return workers
    missing = []
    if not settings.checkpoints_url:
        missing.append("checkpoints_url = \"postgresql://...\" (conversations in PostgreSQL)")
    if settings.memory and not settings.memory_host:
        missing.append("memory_host (a Chroma server, `chroma run`), or memory = false")
    if missing:
        raise WorkersNeedSharedStores(
            f"--workers {workers} needs stores the workers can share; set " + " and ".join(missing)
            + " in the settings (see the README, 'Several workers')")
    return workers


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise PortInUse(f"--port must be between 1 and 65535, got {port}")
    return port


def resolve_tokens(
    settings: Settings, env: Mapping[str, str] | None = None, *, insecure: bool = False,
) -> Tokens | None:
    """The tenants' tokens: ``CRS_API_TOKENS`` (wins) or ``serve.tokens`` in the settings.

    ``None`` only with ``insecure`` and no token at all; without ``insecure`` an empty table
    raises :class:`NoTokens`. Bad entries raise :class:`~crs.ui.tenants.TenantError`.
    """
    env = os.environ if env is None else env
    spec = env.get("CRS_API_TOKENS", "").strip()
    if spec:
        tokens = parse_tokens(spec)
    else:
        tokens = tokens_from({t: s.get_secret_value() for t, s in settings.serve.tokens.items()})
    if tokens.by_tenant:
        return tokens
    if insecure:
        return None
    raise NoTokens("no API token: set CRS_API_TOKENS=tenant:token (or [serve.tokens] in the settings file), "
                   "or pass --insecure-no-auth to serve without authentication")


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket on ``host:port``; ``reuse_port`` lets the workers' sockets share the port."""
    check_port(port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use; choose another with --port") from None
        if exc.errno == errno.EACCES:
            raise PortInUse(f"port {port} needs privileges here; choose one above 1023 with --port") from None
        raise PortInUse(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, *, sock: socket.socket, tokens: Tokens | None, recommender: Recommender | None = None,
        telegram: bool = False, log_level: str = "info") -> None:
    """Serve on a bound socket (:func:`bind`) until interrupted; the app is
    :func:`crs.ui.http_api.create_app`'s."""
    import uvicorn

    from crs.ui.http_api import create_app

    app = create_app(settings, tokens=tokens, recommender=recommender, telegram=telegram)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=10,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(settings: Settings, *, sock: socket.socket, tokens: Tokens | None, workers: int,
                telegram: bool = False, log_level: str = "info") -> None:
    """Serve with ``workers`` processes on one port until interrupted (SIGINT/SIGTERM).

    ``sock`` is bound with ``reuse_port=True``; each further worker gets a socket of its own on
    the same port, and the kernel spreads new connections over them. (On one shared socket the
    first worker to wake accepts a whole burst of connections and keeps them alive: measured, one
    of two workers did twice the work of the other.) uvicorn's supervisor starts the workers (fresh
    interpreters: nothing is shared but the port), replaces one that dies, and stops them all at
    the end; the sockets stay open in it, so connections wait in the backlog of a dead worker's
    socket until its replacement accepts them.
    """
    from uvicorn import Config

    check_workers(settings, workers)
    host, port = sock.getsockname()[:2]
    sockets = [sock, *(bind(host, port, reuse_port=True) for _ in range(workers - 1))]
    # The factory is pickled to each worker: settings and tokens travel with it, not in the environment.
    factory = functools.partial(_worker_app, settings, tokens, telegram)
    # A worker answers the supervisor's ping once it has imported crs (seconds on a busy machine):
    # the default 5 s would kill workers that are only starting.
    config = Config(factory, factory=True, workers=workers, log_level=log_level, access_log=False,
                    timeout_graceful_shutdown=10, timeout_worker_healthcheck=60,
                    timeout_keep_alive=KEEP_ALIVE_SECONDS)
    _supervisor(config, sockets).run()


def _supervisor(config: Any, sockets: list[socket.socket]) -> Any:
    """uvicorn's supervisor, giving worker ``i`` the socket ``i``."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

    class OneSocketEach(Multiprocess):
        def init_processes(self) -> None:
            for own in sockets:
                process = Process(self.config, [own])
                process.start()
                self.processes.append(process)

        def keep_subprocess_alive(self) -> None:  # uvicorn 0.54's, with the worker's own socket
            if self.should_exit.is_set():
                return
            for idx, process in enumerate(self.processes):
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                    self.should_exit.set()
                    return
                if self.should_exit.is_set():
                    return
                logger.info(f"Child process [{process.pid}] died")
                replacement = Process(self.config, [sockets[idx % len(sockets)]])
                replacement.start()
                self.processes[idx] = replacement

    return OneSocketEach(config, sockets=sockets)


def _worker_app(settings: Settings, tokens: Tokens | None, telegram: bool) -> Any:
    """One worker's app; its Recommender is built at startup from ``settings``."""
    from crs.ui.http_api import create_app

    return create_app(settings, tokens=tokens, telegram=telegram)
