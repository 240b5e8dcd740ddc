"""``create_app(config)`` and ``serve(config)``.

Graceful shutdown for load balancers: on the first SIGTERM/SIGINT the main process (Sanic's
``WorkerManager``, patched by :func:`_defer_signals_during_startup`) atomically creates the
draining flag file ``<data_dir>/draining`` (:func:`kairos.app.state.draining_flag_path`).  Every
HTTP worker checks for that file on each health request, so ``/health``, ``/health/ready`` and
``/api/v1/health/check`` answer 503 at once (``/api/v1/health/status`` lists ``Shutdown: FAIL``)
while all other requests, ``/health/live`` included, are served normally.  After
``health_lb_delay_seconds`` (``KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS``) a timer
thread re-sends the signal to the main process, whose handler then runs Sanic's own shutdown:
workers stop accepting, drain in-flight requests, fsync and close their WAL; the writer applies
what it can and exits.  A second signal during the delay shuts down at once; 0 means no wait.
``serve`` removes a stale flag before starting and the flag on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from sanic import HTTPResponse, Request, Sanic
from sanic.http import Http
from sanic.response import BaseHTTPResponse
from sanic.worker.loader import AppLoader

from kairos.allocator import in_use as allocator_in_use
from kairos.app._http import read_unused_body, render_error
from kairos.app.compression import register as register_compression
from kairos.app.cors import bp as cors_bp
from kairos.app.datapoints import bp as datapoints_bp
from kairos.app.datapoints import metric_bp
from kairos.app.features import bp as features_bp
from kairos.app.gating import register as register_gating
from kairos.app.health import bp as health_bp
from kairos.app.listeners import Listeners, bind_listeners
from kairos.app.meta import metricnames_bp, tagnames_bp, tagvalues_bp, version_bp
from kairos.app.metadata import bp as metadata_bp
from kairos.app.metrics import register as register_metrics
from kairos.app.prometheus import bp as prometheus_bp
from kairos.app.state import WorkerState, draining_flag_path
from kairos.app.telnet import register_line_listeners
from kairos.config import Config
from kairos.logs import setup_logging
from kairos.storage.writer import run_writer

__all__ = ["create_app", "serve"]

log = logging.getLogger("kairos.app")


def create_app(config: Config, listeners: Listeners | None = None) -> Sanic:
    """A Sanic app serving the KairosDB API on ``config``'s datastore.

    ``serve`` passes the sockets its main process bound (:mod:`kairos.app.listeners`); without
    them the workers bind the line protocols' ports themselves."""
    setup_logging(config.log_level, config.log_format)
    app = Sanic("kairos", configure_logging=False)
    app.config.REQUEST_MAX_SIZE = config.max_body_bytes
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.config.NOISY_EXCEPTIONS = False
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = config.shutdown_drain_timeout_seconds
    app.ctx.config = config
    for bp in (datapoints_bp, metric_bp, metricnames_bp, version_bp, health_bp):
        app.blueprint(bp)
    for bp in (cors_bp, features_bp, tagnames_bp, tagvalues_bp):
        app.blueprint(bp)
    app.blueprint(prometheus_bp)
    app.blueprint(metadata_bp)
    register_compression(app)

    @app.before_server_start
    async def _open(app: Sanic) -> None:
        os.makedirs(config.data_dir, exist_ok=True)
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(config.worker_threads, thread_name_prefix="kairos-worker")
        )
        app.ctx.state = WorkerState.open(config)
        app.ctx.state.tasks.append(
            app.add_task(app.ctx.state.group_commit(), name="wal-group-commit")
        )

    @app.before_server_stop
    async def _stopping(app: Sanic) -> None:
        # Sanic has just restored the default handlers: a second signal (the process group
        # signalled, or the interpreter's exit in the main process) would kill this worker
        # before its WAL is fsynced, or stop its loop in the middle of the drain.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        app.ctx.state.stopping = True

    @app.after_server_stop
    async def _close(app: Sanic) -> None:
        app.ctx.state.close()

    async def _close_when_stopping(request: Request, response: BaseHTTPResponse) -> None:
        stream = request.stream
        if isinstance(stream, Http) and not request.app.ctx.state.keep_alive_allowed():
            stream.keep_alive = False  # "Connection: close", then the socket closes

    app.register_middleware(_close_when_stopping, "response")

    @app.main_process_ready
    async def _start_writer(app: Sanic, _: object) -> None:
        if not config.runs_writer:
            return  # a query service reads what the ingest service's writer applies
        app.manager.manage(
            "KairosWriter",
            run_writer,
            {"config": config},
        )

    app.register_middleware(read_unused_body, "request")

    @app.exception(Exception)
    async def _errors(request: Request, exc: Exception) -> HTTPResponse:
        return render_error(request.id, request.method, request.path, exc)

    register_metrics(app)
    if "INGEST" in config.api_groups:
        register_line_listeners(app, config, listeners)
    register_gating(app, config.api_groups)
    return app


# Set by ``serve`` in the main process: where the draining flag goes and how long to wait.
@dataclass
class _Drain:
    flag: str | None = None
    delay: float = 0.0
    timeout: float = 10.0


CLEANUP_SLACK_SECONDS = 5.0
"""How long past the drain timeout the main process waits for its workers and writer."""


_drain = _Drain()


def _write_draining_flag(path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, path)
    except OSError:
        log.exception("cannot write the draining flag %s", path)


def _remove_draining_flag(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        log.exception("cannot remove the draining flag %s", path)


def _defer_signals_during_startup() -> None:
    """Run the main process's shutdown from its monitor loop, never from a signal handler.

    Sanic's main process talks to the workers' shared state through a multiprocessing manager
    proxy (its ack wait and every monitor cycle read and write it).  Sanic's shutdown signal
    handler uses the same proxy connection; run in the middle of a proxy call it
    desynchronises the connection: the main process then hangs for ever (a SIGTERM within a
    second of start) or dies with ``TypeError: 'NoneType' object is not a mapping`` in its
    state sync (about one stop in 50 under load).  So the handler only records the signal;
    the monitor loop (``_poll_monitor``, every 0.1 s) acts on it, after the start-up ack.

    The action implements the load-balancer detection delay (see the module docstring): the
    first signal only creates the draining flag and starts a timer; the timer re-sends the
    signal to this process, and that (or any second signal) runs Sanic's shutdown.  Once the
    shutdown runs, further signals are logged and ignored (Sanic would SIGKILL every process,
    losing the workers' final WAL fsync): the shutdown is bounded by
    ``shutdown.drain_timeout_seconds``, and SIGKILL remains for the impatient.  Sanic's
    cleanup gives the processes 10 s, and the interpreter's exit then SIGTERMs whatever is
    left (a worker still closing connections, before its WAL fsync); the patched cleanup
    waits for them up to the drain timeout first.
    """
    from sanic.worker.manager import WorkerManager

    if getattr(WorkerManager, "_kairos_deferred_signals", False):
        return
    wait_for_ack = WorkerManager.wait_for_ack
    poll_monitor = WorkerManager._poll_monitor
    cleanup = WorkerManager.cleanup
    shutdown_signal = WorkerManager.shutdown_signal

    def patched_wait(self) -> None:
        wait_for_ack(self)
        _dispatch(self)

    def patched_poll(self):
        _dispatch(self)
        return poll_monitor(self)

    def patched_signal(self, signum, frame) -> None:
        pending = getattr(self, "_kairos_pending_signals", None)
        if pending is None:
            pending = self._kairos_pending_signals = []
        pending.append((signum, frame))

    def _dispatch(self) -> None:
        pending = getattr(self, "_kairos_pending_signals", None)
        while pending:
            _act(self, *pending.pop(0))

    def _act(self, signum, frame) -> None:
        if getattr(self, "_shutting_down", False):
            log.info(
                "Received signal %s: already shutting down (within %gs); ignored",
                signal.Signals(signum).name,
                _drain.timeout,
            )
            return
        timer = getattr(self, "_kairos_drain_timer", None)
        if timer is not None:
            # The delay is over (the timer's own signal) or a second signal: shut down now.
            self._kairos_drain_timer = None
            timer.cancel()
            if not self._kairos_drain_elapsed:
                log.info("second shutdown signal: not waiting for the load balancer delay")
            shutdown_signal(self, self._kairos_drain_signum, frame)
            return
        flag, delay = _drain.flag, _drain.delay
        if flag is None:
            shutdown_signal(self, signum, frame)
            return
        _write_draining_flag(flag)
        if delay <= 0:
            shutdown_signal(self, signum, frame)
            return
        log.info(
            "Received signal %s: health checks now fail; shutting down in %gs "
            "(load balancer detection delay)",
            signal.Signals(signum).name,
            delay,
        )

        def _elapsed() -> None:
            self._kairos_drain_elapsed = True
            os.kill(os.getpid(), signum)

        self._kairos_drain_signum = signum
        self._kairos_drain_elapsed = False
        self._kairos_drain_timer = threading.Timer(delay, _elapsed)
        self._kairos_drain_timer.daemon = True
        self._kairos_drain_timer.start()

    def patched_cleanup(self) -> None:
        # Workers stop within the drain timeout (Sanic's graceful timeout) plus their WAL
        # fsync; the writer within the drain timeout plus one apply.
        deadline = time.monotonic() + _drain.timeout + CLEANUP_SLACK_SECONDS
        for process in list(self.processes):
            while process.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.is_alive():
                log.error(
                    "%s [%s] still running %gs after the shutdown began; leaving it to Sanic",
                    process.name,
                    process.pid,
                    _drain.timeout + CLEANUP_SLACK_SECONDS,
                )
        cleanup(self)

    # Patching a third-party class: setattr, as mypy forbids assigning to methods.
    setattr(WorkerManager, "wait_for_ack", patched_wait)  # noqa: B010
    setattr(WorkerManager, "_poll_monitor", patched_poll)  # noqa: B010
    setattr(WorkerManager, "shutdown_signal", patched_signal)  # noqa: B010
    setattr(WorkerManager, "cleanup", patched_cleanup)  # noqa: B010
    setattr(WorkerManager, "_kairos_deferred_signals", True)  # noqa: B010


def serve(config: Config, http_env: str = "KAIROSDB_BIND_ADDRESS") -> None:
    """Run the HTTP workers and the writer process until SIGINT/SIGTERM.

    Every listener is bound first, before anything else (``ListenerUnavailable`` when one
    cannot be; ``http_env``, this service's bind address variable, is named in its message);
    the start-up line listing them all is logged once they are bound."""
    listeners = bind_listeners(config, http_env)  # the process exits if this raises
    os.makedirs(config.data_dir, exist_ok=True)
    flag = draining_flag_path(config.data_dir)
    _remove_draining_flag(flag)  # left by a server that died during its shutdown
    _drain.flag, _drain.delay = flag, float(config.health_lb_delay_seconds)
    _drain.timeout = float(config.shutdown_drain_timeout_seconds)
    _defer_signals_during_startup()
    loader = AppLoader(factory=partial(create_app, config, listeners))
    app = loader.load()
    app.prepare(sock=listeners.http, workers=config.workers, single_process=False)
    log.info(
        "Kairos serving %s (%s datastore, data in %s, %d HTTP worker%s%s, allocator %s)",
        listeners.describe(),
        config.datastore,
        os.path.abspath(config.data_dir),
        config.workers,
        "" if config.workers == 1 else "s",
        " + writer" if config.runs_writer else ", no writer (reads what an ingest service applies)",
        allocator_in_use(),
        extra={"allocator": allocator_in_use(), "datastore": config.datastore},
    )
    try:
        Sanic.serve(primary=app, app_loader=loader)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        # A SIGTERM sent to the whole process group (``timeout``, systemd's default
        # KillMode=control-group) also ends Sanic's multiprocessing manager, and the main
        # process loses its connection to it.  The workers got the signal too and shut down
        # on their own (WAL fsynced, writer drained), so this is a shutdown, not a crash.
        if flag is None or not os.path.exists(flag):
            raise
        log.warning(
            "worker manager connection lost during shutdown (the process group was signalled)"
        )
    finally:
        listeners.close()
        _remove_draining_flag(flag)
