"""``goldbean serve``: production serving, configured only by the environment.

``goldbean serve`` runs two things on one address: gunicorn (sync workers) with the app on a private unix
socket, and in front of it, in this process, the held-stream server (``goldbean.events``), which holds the
radar's event streams (``/api/v1/events``, ``/radar/events``) and passes every other request to gunicorn.
``goldbean serve --app-only`` is gunicorn alone on ``GOLDBEAN_BIND`` (the streams then short-poll; for a
reverse proxy that routes them to a ``goldbean events`` of their own). docs/operations.md.

This module is also the gunicorn configuration file itself, so the app alone starts the same way as
``goldbean serve --app-only``:

    gunicorn -c python:goldbean.serve 'goldbean.app:create_app()'

Environment (everything else, e.g. the database, comes from ``goldbean.config``):

- ``GOLDBEAN_BIND``: where to listen, default ``127.0.0.1:8000`` (a comma-separated list is allowed,
  e.g. ``unix:/run/goldbean/gunicorn.sock``).
- ``GOLDBEAN_EVENTS_HEARTBEAT_S``, ``GOLDBEAN_EVENTS_MAX_STREAMS``, ``GOLDBEAN_EVENTS_THREADS``,
  ``GOLDBEAN_EVENTS_POLL_S``: the held-stream server (``goldbean.events.Options``).
- ``GOLDBEAN_WORKERS``: worker processes, default ``2 * CPUs + 1`` capped at 8.
- ``GOLDBEAN_THREADS``: threads per worker, default 1 (sync workers).
- ``GOLDBEAN_TIMEOUT``: seconds before a silent worker is killed and replaced, default 30.
- ``GOLDBEAN_FORWARDED_ALLOW_IPS``: proxies trusted for ``X-Forwarded-Proto``, default ``127.0.0.1``.
- ``GOLDBEAN_PROXY_HOPS``: how many reverse proxies are in front (1 behind nginx): the client's address
  (per-address throttles, logs) is then read from ``X-Forwarded-For``; default 0.
- ``PROMETHEUS_MULTIPROC_DIR``: where the workers' metrics meet; default ``<instance>/metrics``,
  emptied when the server starts.
- ``GOLDBEAN_LOG_LEVEL``: default ``INFO``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

APP = "goldbean.app:create_app()"


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def default_workers() -> int:
    return min(2 * (os.cpu_count() or 1) + 1, 8)


def metrics_dir() -> Path:
    from .config import instance_path

    return Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or instance_path() / "metrics")


def prepare_metrics_dir() -> Path:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for the master and the workers and clear stale files.
    Must run before ``prometheus_client`` is imported by any process of the server."""
    folder = metrics_dir()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def gunicorn_argv() -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "python:goldbean.serve", APP]


def exec_gunicorn() -> None:  # pragma: no cover - replaces the process
    argv = gunicorn_argv()
    os.execv(argv[0], argv)


def _wait_for_socket(path: Path, child: Any, timeout: float) -> bool:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(path))
                return True
            except OSError:
                time.sleep(0.1)
    return False


def serve_with_events(app: Any) -> int:
    """``goldbean serve``: gunicorn on a private unix socket, the events server on ``GOLDBEAN_BIND`` in
    front of it (this process, ``app`` opens the streams). Returns when either stops: on SIGTERM/SIGINT,
    or when gunicorn exits (its exit code is returned, so a supervisor restarts the pair)."""
    import logging.config
    import signal
    import subprocess
    import tempfile

    from .events import run

    logging.config.dictConfig(logconfig_dict)
    prepare_metrics_dir()  # the workers' metrics meet there (gunicorn's on_starting empties it again)
    public = ",".join(bind)
    private = Path(tempfile.mkdtemp(prefix="goldbean-"))  # mode 0700: only this user reaches the app
    sock = private / "app.sock"
    env = {**os.environ, "GOLDBEAN_BIND": f"unix:{sock}", "GOLDBEAN_PROXY_HOPS": str(proxy_hops + 1)}
    child = subprocess.Popen(gunicorn_argv(), env=env)
    try:
        if not _wait_for_socket(sock, child, 60):
            return child.poll() or 1
        run(app, bind=public, upstream=f"unix:{sock}", stop_when=lambda: child.poll() is not None,
            on_hup=lambda: child.send_signal(signal.SIGHUP))  # systemctl reload: new gunicorn workers
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(graceful_timeout + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(private, ignore_errors=True)
    return child.returncode or 0


# --- the gunicorn configuration (read when gunicorn loads this module with -c python:goldbean.serve) --

bind = [b.strip() for b in os.environ.get("GOLDBEAN_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = _int_env("GOLDBEAN_WORKERS", default_workers())
threads = _int_env("GOLDBEAN_THREADS", 1)
timeout = _int_env("GOLDBEAN_TIMEOUT", 30)
graceful_timeout = _int_env("GOLDBEAN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
forwarded_allow_ips = os.environ.get("GOLDBEAN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# reverse proxies in front (nginx = 1): the client's address is then taken from X-Forwarded-For, as the
# proxy appended it; 0 (no proxy) ignores the header, which a client could otherwise forge
proxy_hops = _int_env("GOLDBEAN_PROXY_HOPS", 0)
# the app logs one JSON access line per request itself; gunicorn's own access log stays off
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GOLDBEAN_LOG_LEVEL", "info").lower()
proc_name = "goldbean"
# no per-user control socket (gunicorn >= 24): several servers may share a host and a user
control_socket_disable = True
# every line JSON from gunicorn's first line on (see goldbean.observability)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "goldbean.observability.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
    },
}
# a request line or header this long is an attack, not a volunteer. The app refuses smaller ones itself, in
# JSON (merchant_api.edge: URL 4096, 64 fields, 8192 bytes a field); these sit above so that its answer
# is the one a client sees. gunicorn's request line stops at 8190 whatever is asked (docs/api.md).
limit_request_line = 8190
limit_request_fields = 128
limit_request_field_size = 16384


def on_starting(server: Any) -> None:
    folder = prepare_metrics_dir()
    server.log.info("metrics of all workers meet in %s", folder)


def post_worker_init(worker: Any) -> None:
    """A worker that loaded an unsafe production configuration stops (``goldbean.guards``); gunicorn
    then exits with "Worker failed to boot" and the reasons in its log. Behind reverse proxies, the
    client's address is taken from the hops they appended (``GOLDBEAN_PROXY_HOPS``)."""
    from .guards import StartupRefused, check

    try:
        check(worker.wsgi)
    except StartupRefused as exc:
        worker.log.error(str(exc))
        sys.exit(3)  # gunicorn's WORKER_BOOT_ERROR
    if proxy_hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        worker.wsgi = ProxyFix(worker.wsgi, x_for=proxy_hops, x_proto=proxy_hops)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
