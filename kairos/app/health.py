"""Health endpoints: KairosDB's ``/api/v1/health/{check,status}`` and ``/health[/ready|/live]``.

Healthy means: the datastore answers a read, the writer process is applying the WAL (its
status file is fresh, or there is nothing to apply) and the data directory has more free space
than its reserve (``Disk``).  With less, the server is read-only for ingest: ``/health`` is 503
and says why, ``/health/ready`` says ``"ingest": "read-only: ..."`` and stays 200 for a
service that also answers queries (they keep working) but is 503 for an ingest-only one.
Ingest is accepted again, without a restart, as soon as space is freed.

During a graceful shutdown (the main process got SIGTERM/SIGINT and created the draining flag,
see :mod:`kairos.app.factory`) every check endpoint reports a failing ``Shutdown`` check and
``/health``, ``/health/ready`` and ``/api/v1/health/check`` answer 503, so load balancers stop
routing here while the other endpoints keep serving.  ``/health/live`` stays 200.
"""

from __future__ import annotations

import os
import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from kairos.app._http import json_response, no_content
from kairos.app.state import WorkerState
from kairos.errors import DatastoreStarting
from kairos.storage.wal import backlog_bytes, quarantined_files
from kairos.storage.writer import read_status

__all__ = ["bp"]

bp = Blueprint("health")

WRITER_STALE_SECONDS = 10.0


def _checks(st: WorkerState) -> dict[str, tuple[bool, dict]]:
    out: dict[str, tuple[bool, dict]] = {}
    if st.draining:
        out["Shutdown"] = (False, {"error": "server is shutting down (draining)"})
    try:
        st.store.refresh()
        st.store.metric_names()
        out["Datastore-Query"] = (True, {})
    except DatastoreStarting as e:
        out["Datastore-Query"] = (False, {"error": str(e), "starting": True})
    except Exception as e:  # the check reports any failure as FAIL
        out["Datastore-Query"] = (False, {"error": str(e)})
    adm = st.admission
    refusing = adm.sample_disk()
    out["Disk"] = (
        not refusing or not st.config.runs_writer,  # a query service writes nothing there
        {
            "free_bytes": adm.free,
            "min_free_bytes": adm.min_free,
            "ingest": f"read-only: {adm.disk_message()}" if refusing else "accepted",
        },
    )
    status = read_status(st.config.data_dir)
    # Live: bytes in the WAL that the datastore's checkpoint does not cover yet.
    backlog = backlog_bytes(st.wal.dir, st.store.wal_positions)
    # WAL files the writer moved aside (bad header): listed for the operator, not a failure
    # of this server, which applies every other file.
    quarantined = {"quarantined_files": q} if (q := quarantined_files(st.wal.dir)) else {}
    if status is None:
        out["Writer"] = (
            False,
            {"error": "writer has not reported yet", "wal_backlog_bytes": backlog, **quarantined},
        )
    else:
        age = time.time() - status.get("updated", 0)
        ok = status.get("state") == "running" and (age < WRITER_STALE_SECONDS or backlog == 0)
        out["Writer"] = (
            ok,
            {
                "state": status.get("state"),
                "wal_backlog_bytes": backlog,
                "applied_points": status.get("applied_points", 0),
                "seconds_since_report": round(age, 3),
                **quarantined,
                **({"error": status["error"]} if status.get("error") else {}),
                **({"last_error": status["last_error"]} if status.get("last_error") else {}),
            },
        )
    out["WAL"] = (
        True,
        {
            "worker_pid": os.getpid(),
            "appends": st.wal.appends,
            "synced_appends": st.wal.synced_appends,
            "bytes_written": st.wal.bytes_written,
        },
    )
    return out


@bp.get("/api/v1/health/status")
async def health_status(request: Request) -> HTTPResponse:
    checks = _checks(request.app.ctx.state)
    return json_response([f"{name}: {'OK' if ok else 'FAIL'}" for name, (ok, _) in checks.items()])


@bp.get("/api/v1/health/check")
async def health_check(request: Request) -> HTTPResponse:
    st: WorkerState = request.app.ctx.state
    if st.draining:
        return no_content(503)
    healthy = all(ok for ok, _ in _checks(st).values())
    return no_content(st.config.health_healthy_response_code if healthy else 500)


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    checks = _checks(request.app.ctx.state)
    healthy = all(ok for ok, _ in checks.values())
    body = {
        "status": "healthy" if healthy else "draining" if "Shutdown" in checks else "unhealthy",
        "checks": {name: {"ok": ok, **detail} for name, (ok, detail) in checks.items()},
    }
    return json_response(body, status=200 if healthy else 503)


@bp.get("/health/ready")
async def ready(request: Request) -> HTTPResponse:
    """Ready to take this service's traffic.  Ingest and deletes only need the WAL: while the
    datastore is down (at start-up too) they are still accepted (the writer applies them when
    it returns), up to the WAL quota.  A query-only service needs the datastore.  Neither is
    ready while the datastore answers but its tables do not exist yet (a new Cassandra
    keyspace, in the moment before the writer has created it): queries would fail."""
    st: WorkerState = request.app.ctx.state
    checks = _checks(st)
    backlog = checks["Writer"][1]["wal_backlog_bytes"]
    datastore_ok, datastore = checks["Datastore-Query"]
    disk_ok, disk = checks["Disk"]
    groups = st.config.api_groups
    if groups & {"INGEST", "DELETE"}:
        # A full disk makes the service read-only: still ready if it answers queries.
        ok = (
            backlog <= st.admission.max_backlog
            and not datastore.get("starting")
            and (disk_ok or "QUERY" in groups)
        )
    else:
        ok = datastore_ok
    if "Shutdown" in checks:
        ok, status = False, "draining"
    else:
        status = "ready" if ok else "not ready"
    body = {
        "status": status,
        "datastore": "ok" if datastore_ok else datastore["error"],
        "wal_backlog_bytes": backlog,
        "ingest": disk["ingest"],
    }
    return json_response(body, status=200 if ok else 503)


@bp.get("/health/live")
async def live(request: Request) -> HTTPResponse:
    return json_response({"status": "alive"})
