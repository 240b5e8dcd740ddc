"""Kairos configuration: every setting declared once, loaded as defaults < YAML < environment
< command-line options.

Each field of :class:`Config` is declared with :func:`setting`, which records in the field's
metadata (a :class:`Setting`) everything about it::

    workers: int = setting(2, "HTTP worker processes; the writer process is extra.",
                           env="KAIROSDB_HTTP_WORKERS", option="--workers", check=between(1, 256))

- ``doc``: the help text (the source of ``kairos serve --help`` and of the README's table);
- ``key``: the YAML key, dotted by section (``ingestion.max_batch_size`` is
  ``ingestion: {max_batch_size: ...}``).  Sections only group: any nesting whose keys joined
  with ``_`` give the attribute name sets it.  Validation messages name the key;
- ``env``: its ``KAIROSDB_*`` environment variable(s), ``option``: its command-line option
  (by default ``--`` and the attribute name with dashes: ``--query-timeout-ms``);
- ``check``: its constraint, a :class:`Check` (``at_least(1)``, ``one_of("text", "json")``);
- ``parse``: how a raw value from YAML, the environment or an option becomes the field's type
  (by default from the annotation: int, float, bool or str), ``parse_env`` for an environment
  value of another shape (``KAIROSDB_BIND_ADDRESS=host:port`` sets ``host`` and ``port``).

:data:`ENV` (variable -> attributes), :data:`SETTINGS` (attribute -> declaration), the YAML
lookup and :meth:`Config.validate` are derived from these declarations.  :func:`load` validates
every field once at start-up and raises :class:`~kairos.errors.ConfigError` naming the key (a
bad value) or the source (a value that does not parse) and the bad value.  Per-request
parameters (``?sync=true``) override the result at request time.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import yaml

from kairos.errors import ConfigError

__all__ = ["ENV", "SETTINGS", "Check", "Config", "Setting", "cassandra_contact_points", "load"]


# --- constraints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A constraint on a value: ``ok(value)``, or ConfigError ``"<key>: <message>, got <value>"``."""

    ok: Callable[[Any], bool]
    message: str
    choices: tuple[str, ...] | None = None
    """The allowed values, when the check is :func:`one_of` (offered to the command line)."""


def at_least(n: int) -> Check:
    return Check(lambda v: v >= n, f"must be at least {n}")


def between(lo: int, hi: int) -> Check:
    return Check(lambda v: lo <= v <= hi, f"must be between {lo} and {hi}")


def one_of(*choices: str, fold: Callable[[str], str] = str, message: str | None = None) -> Check:
    """``fold(value)`` is one of ``choices``; message ``must be a, b or c`` unless given."""
    listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
    return Check(lambda v: fold(v) in choices, message or f"must be {listed}", choices)


# Every comparison below is False for NaN, so NaN fails each of them.
NON_NEGATIVE = Check(lambda v: v >= 0, "must be >= 0")
POSITIVE = Check(lambda v: v > 0, "must be positive")
PORT = Check(lambda v: 0 <= v <= 65535, "out of range")
_CONSISTENCY = one_of(
    *("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"),
    fold=str.upper,
    message="not a consistency level",
)
_ALLOCATOR = one_of("malloc", "jemalloc", message="malloc or jemalloc")


def _server_types_ok(v: str) -> bool:
    types = {t for t in v.replace(" ", "").split(",") if t}
    return bool(types) and types <= {"ALL", "INGEST", "QUERY", "DELETE"}


def _contact_points_ok(v: str) -> bool:
    for part in v.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "9042")
        if not host.strip("[] ") or not port.isdigit() or not 0 < int(port) <= 65535:
            return False
    return True


# --- parsers: (label, raw value) -> value; label names the source in the error -------------------


def _parse_bool(label: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{label}: expected true or false, got {v!r}")


def _parse_int(label: str, v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    return int(str(v).strip())


def _parse_float(label: str, v: Any) -> float:
    return float(str(v).strip())


def _parse_str(label: str, v: Any) -> str:
    return str(v)


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "str": _parse_str,
}


def _parse_address(label: str, v: str) -> tuple[str, int]:
    host, sep, port = str(v).rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{label}: expected host:port, got {v!r}")
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"{label}: port must be a number, got {v!r}") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"{label}: port out of range, got {v!r}")
    return host.strip("[]"), p


def _address_host(label: str, v: str) -> str:
    return _parse_address(label, v)[0]


def _address_port(label: str, v: str) -> int:
    return _parse_address(label, v)[1]


def _checked(check: Check) -> Callable[[str, Any], str]:
    """A string parser that applies ``check`` at once, naming the source rather than the key."""

    def parse(label: str, v: Any) -> str:
        if not check.ok(str(v)):
            raise ConfigError(f"{label}: {check.message}, got {v!r}")
        return str(v)

    return parse


# --- declarations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting's declaration (the metadata of a :class:`Config` field; see the module)."""

    doc: str
    key: str | None = None
    env: tuple[str, ...] = ()
    option: str | None = None
    check: Check | None = None
    parse: Callable[[str, Any], Any] | None = None
    parse_env: Callable[[str, str], Any] | None = None
    # Filled in from the field when the class is defined:
    name: str = ""
    type: str = ""
    default: Any = None

    def parser(self, from_env: bool = False) -> Callable[[str, Any], Any]:
        """How a value of this setting is parsed (from the environment: ``parse_env`` if any)."""
        p = (self.parse_env if from_env else None) or self.parse
        assert p is not None, self.name  # _declarations gives every setting a parser
        return p


def setting(
    default: Any,
    doc: str,
    *,
    key: str | None = None,
    env: str | tuple[str, ...] = (),
    option: str | None = None,
    check: Check | None = None,
    parse: Callable[[str, Any], Any] | None = None,
    parse_env: Callable[[str, str], Any] | None = None,
) -> Any:
    """A :class:`Config` field with its default and its :class:`Setting` declaration."""
    env = (env,) if isinstance(env, str) else env
    spec = Setting(" ".join(doc.split()), key, env, option, check, parse, parse_env)
    return dataclasses.field(default=default, metadata={"setting": spec})


@dataclass
class Config:
    """Every setting, with its default, declared once (see the module docstring)."""

    host: str = setting(
        "127.0.0.1",
        "Address the HTTP server binds (the environment variable takes host:port).",
        env="KAIROSDB_BIND_ADDRESS",
        option="--host",
        parse_env=_address_host,
    )
    port: int = setting(
        8080,
        "HTTP port (the environment variable takes host:port).",
        env="KAIROSDB_BIND_ADDRESS",
        option="--port",
        check=PORT,
        parse_env=_address_port,
    )
    telnet_port: int = setting(
        4242,
        """Telnet protocol port on ``host``, shared by this server's HTTP workers only; 0
        disables it.""",
        env="KAIROSDB_TELNET_PORT",
        option="--telnet-port",
        check=PORT,
    )
    graphite_port: int = setting(
        2003,
        """Graphite plaintext protocol port on ``host``, shared by this server's HTTP workers
        only; 0 disables it.""",
        env="KAIROSDB_GRAPHITE_PORT",
        option="--graphite-port",
        check=PORT,
    )
    data_dir: str = setting(
        "./data",
        "Embedded datastore and WAL directory.",
        env="KAIROSDB_DATA_DIR",
        option="--data-dir",
    )
    workers: int = setting(
        2,
        "HTTP worker processes; the writer process is extra.",
        env="KAIROSDB_HTTP_WORKERS",
        option="--workers",
        check=between(1, 256),
    )
    allocator: str = setting(
        "malloc",
        """Memory allocator of every process: ``malloc`` (glibc) or ``jemalloc`` (Debian's
        libjemalloc2, preloaded by re-executing the command).""",
        env="KAIROSDB_ALLOCATOR",
        option="--allocator",
        check=_ALLOCATOR,
        parse=_checked(_ALLOCATOR),
    )
    ingestion_default_sync: bool = setting(
        False,
        "Answer ingest only after the WAL fsync (``?sync=`` wins).",
        key="ingestion.default_sync",
        env="KAIROSDB_DEFAULT_SYNC",
    )
    ingestion_fsync_interval_ms: int = setting(
        1000,
        "Group-commit interval for non-sync ingest.",
        key="ingestion.fsync_interval_ms",
        env="KAIROSDB_FSYNC_INTERVAL_MS",
        check=at_least(1),
    )
    ingestion_sync_visible_timeout_ms: int = setting(
        5000,
        """How long a ``sync`` ingest (``?sync=true`` or ``ingestion.default_sync``) waits,
        after its WAL fsync, for the writer to apply it so queries see it; past this the
        answer is 503 + ``Retry-After`` (the points are durable and will be applied).""",
        key="ingestion.sync_visible_timeout_ms",
        env="KAIROSDB_SYNC_VISIBLE_TIMEOUT_MS",
        check=at_least(1),
    )
    ingestion_max_batch_size: int = setting(
        10000,
        "Maximum data points in one ingest request; more is 413.",
        key="ingestion.max_batch_size",
        env="KAIROSDB_MAX_BATCH_SIZE",
        check=at_least(1),
    )
    ingestion_max_body_mb: float = setting(
        64.0,
        "Maximum ingest body size in MiB, compressed or decompressed.",
        key="ingestion.max_body_mb",
        env="KAIROSDB_MAX_BODY_MB",
        check=POSITIVE,
    )
    max_memory_mb: int = setting(
        1024,
        """Resident memory of one HTTP worker above which ingest answers 503 with
        ``Retry-After``.""",
        env="KAIROSDB_MAX_MEMORY_MB",
        check=at_least(1),
    )
    max_inflight_body_mb: float = setting(
        0.0,
        """Request body bytes one HTTP worker holds at once, in MiB: a body is admitted by its
        ``Content-Length`` (a chunked one as it streams) before it is read, and past the budget
        the request answers 503 with ``Retry-After`` (a body alone in the worker is always
        admitted up to ``ingestion.max_body_mb``).  0 means a quarter of
        ``KAIROSDB_MAX_MEMORY_MB``.""",
        env="KAIROSDB_MAX_INFLIGHT_BODY_MB",
        check=NON_NEGATIVE,
    )
    wal_max_backlog_mb: float = setting(
        10240.0,
        """Disk quota of the WAL: unapplied WAL bytes above which ingest answers 503 with
        ``Retry-After`` until the writer catches up.""",
        env="KAIROSDB_WAL_MAX_BACKLOG_MB",
        check=Check(lambda v: 0 < v < math.inf, "must be a positive number"),
    )
    metadata_max_value_mb: float = setting(
        1.0,
        """Largest metadata value (``POST /api/v1/metadata/...`` body) in MiB; larger is 413.
        KairosDB sets no limit of its own.""",
        key="metadata.max_value_mb",
        env="KAIROSDB_METADATA_MAX_VALUE_MB",
        check=POSITIVE,
    )
    metadata_busy_timeout_ms: int = setting(
        10000,
        """How long an embedded metadata read or write waits for another process's write
        (SQLite's busy timeout) before answering 503 with ``Retry-After``.""",
        key="metadata.busy_timeout_ms",
        env="KAIROSDB_METADATA_BUSY_TIMEOUT_MS",
        check=NON_NEGATIVE,
    )
    worker_threads: int = setting(
        4,
        "Threads per HTTP worker for blocking work: queries and synchronous WAL fsyncs.",
        env="KAIROSDB_WORKER_THREADS",
        check=between(1, 1024),
    )
    writer_interval_ms: int = setting(
        200,
        """How often the writer applies the WAL to the datastore; data becomes queryable
        within about this long.""",
        key="writer.interval_ms",
        env="KAIROSDB_WRITER_INTERVAL_MS",
        check=NON_NEGATIVE,
    )
    writer_max_memory_mb: int = setting(
        512,
        """Memory the writer process stays under: one apply reads at most an eighth of what
        is left above the process's own ~96 MB of WAL (decoding, sorting and block encoding
        take several times the WAL bytes) and a compaction merges at most a quarter of it
        of points at a time.  The series table (a few hundred bytes per series) comes on
        top.""",
        key="writer.max_memory_mb",
        env="KAIROSDB_WRITER_MAX_MEMORY_MB",
        check=at_least(128),
    )
    datastore: str = setting(
        "embedded",
        """Backend: ``embedded`` (the built-in engine under ``data_dir``) or ``cassandra``
        (KairosDB's keyspace on Apache Cassandra).  The WAL stays under ``data_dir`` either
        way.""",
        env="KAIROSDB_DATASTORE",
        check=one_of("embedded", "cassandra"),
    )
    datastore_retention_seconds: int = setting(
        0,
        """Embedded store: points with a timestamp older than now minus this many seconds are
        hidden from queries at once and dropped by the next compaction; 0 keeps everything.""",
        key="datastore.retention_seconds",
        env="KAIROSDB_DATASTORE_RETENTION_SECONDS",
        check=NON_NEGATIVE,
    )
    datastore_min_free_mb: float = setting(
        256.0,
        """Free-space reserve of the data directory's file system: below it, ingest, deletes
        and metadata writes answer 507 with ``Retry-After`` (queries keep working) and resume
        by themselves once space is freed; the writer and compaction keep the reserve to
        finish their work.  0 refuses only when the disk is actually full.""",
        key="datastore.min_free_mb",
        env="KAIROSDB_DISK_MIN_FREE_MB",
        check=Check(lambda v: 0 <= v < math.inf, "must be a number >= 0"),
    )
    datastore_compaction_fanout: int = setting(
        8,
        "Embedded store: blocks of one level merged together into the next level.",
        key="datastore.compaction_fanout",
        env="KAIROSDB_DATASTORE_COMPACTION_FANOUT",
        check=at_least(2),
    )
    datastore_default_ttl: int = setting(
        0,
        "TTL in seconds for points ingested with ttl 0; 0 keeps them forever.",
        key="datastore.default_ttl",
        env="KAIROSDB_DATASTORE_DEFAULT_TTL",
        check=NON_NEGATIVE,
    )
    query_max_points: int = setting(
        100_000_000,
        "Most raw data points one query may read; more is a 400.",
        key="query.max_points",
        env="KAIROSDB_QUERY_MAX_POINTS",
        check=at_least(1),
    )
    query_timeout_ms: int = setting(
        30_000,
        "A query still running after this long is abandoned with a 503.",
        key="query.timeout_ms",
        env="KAIROSDB_QUERY_TIMEOUT_MS",
        check=at_least(1),
    )
    query_regex_timeout_ms: int = setting(
        1_000,
        """Time one query may spend matching its ``regex:`` tag filters against tag values
        (all of them together; never more than what is left of ``query.timeout_ms``); a
        pattern that needs longer (catastrophic backtracking) is answered with a 400.""",
        key="query.regex_timeout_ms",
        env="KAIROSDB_QUERY_REGEX_TIMEOUT_MS",
        check=at_least(1),
    )
    cache_enable: bool = setting(
        True,
        """Query cache: raw results reused by queries with ``cache_time`` (see
        :mod:`kairos.query.cache`).""",
        env="KAIROSDB_CACHE_ENABLE",
    )
    cache_max_mb: float = setting(
        128.0,
        "Memory bound of each HTTP worker's query cache.",
        env="KAIROSDB_CACHE_MAX_MB",
        check=Check(lambda v: 0 <= v < math.inf, "must be a number >= 0"),
    )
    server_type: str = setting(
        "ALL",
        """``ALL`` or a comma list of ``INGEST``, ``QUERY``, ``DELETE`` (KairosDB's
        ``kairosdb.server.type``); disabled API groups answer 403.  ``kairos ingest`` sets
        ``INGEST,DELETE`` and ``kairos query`` sets ``QUERY``.""",
        env="KAIROSDB_SERVER_TYPE",
        check=Check(_server_types_ok, "must be ALL or a comma list of INGEST, QUERY, DELETE"),
    )
    health_healthy_response_code: int = setting(
        204,
        "Status of a healthy ``/api/v1/health/check`` (KairosDB's healthyResponseCode).",
        key="health.healthy_response_code",
    )
    health_lb_delay_seconds: float = setting(
        3.0,
        """On SIGTERM/SIGINT, seconds during which the health/readiness endpoints answer 503
        while every other request is still served, so load balancers stop routing here
        before the server stops accepting; 0 = no wait.""",
        key="health.lb_delay_seconds",
        env="KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS",
        check=Check(lambda v: 0 <= v < math.inf, "must be a finite number >= 0"),
    )
    shutdown_drain_timeout_seconds: float = setting(
        10.0,
        """After the load-balancer delay, seconds the shutdown waits for in-flight requests
        (keep-alive connections are closed after their current response) and for the
        writer's last applies; then connections are cut, every WAL is fsynced and the server
        exits.  The whole stop takes at most ``health.lb_delay_seconds`` + this (+ a second).""",
        key="shutdown.drain_timeout_seconds",
        env="KAIROSDB_SHUTDOWN_DRAIN_TIMEOUT_SECONDS",
        check=Check(lambda v: 0 < v < math.inf, "must be a finite number > 0"),
    )
    version: str = setting(
        "KairosDB 1.3.2-kairos.0.1.0", "Text of ``/api/v1/version``.", option="--version-text"
    )
    cassandra_contact_points: str = setting(
        "localhost:9042",
        "Comma list of ``host[:port]`` (port 9042 when omitted).",
        key="cassandra.contact_points",
        env="KAIROSDB_CASSANDRA_CONTACT_POINTS",
        check=Check(_contact_points_ok, "expected host[:port] list"),
    )
    cassandra_keyspace: str = setting(
        "kairosdb",
        "Keyspace of the KairosDB tables.",
        key="cassandra.keyspace",
        env="KAIROSDB_CASSANDRA_KEYSPACE",
        check=Check(lambda v: v.replace("_", "").isalnum(), "letters, digits and _ only"),
    )
    cassandra_username: str = setting(
        "",
        "User name (empty: no authentication).",
        key="cassandra.username",
        env="KAIROSDB_CASSANDRA_USERNAME",
    )
    cassandra_password: str = setting(
        "", "Password.", key="cassandra.password", env="KAIROSDB_CASSANDRA_PASSWORD"
    )
    cassandra_replication: str = setting(
        "{'class': 'SimpleStrategy','replication_factor' : 1}",
        "Replication map of a keyspace Kairos creates.",
        key="cassandra.replication",
        env="KAIROSDB_CASSANDRA_REPLICATION",
    )
    cassandra_write_consistency: str = setting(
        "QUORUM",
        "Consistency level of writes (KairosDB's default QUORUM).",
        key="cassandra.write_consistency",
        env="KAIROSDB_CASSANDRA_WRITE_CONSISTENCY",
        check=_CONSISTENCY,
    )
    cassandra_read_consistency: str = setting(
        "ONE",
        "Consistency level of reads (KairosDB's default ONE).",
        key="cassandra.read_consistency",
        env="KAIROSDB_CASSANDRA_READ_CONSISTENCY",
        check=_CONSISTENCY,
    )
    cassandra_row_width: int = setting(
        1814400000,
        """Row width stored in the ``spec`` table by a new keyspace (KairosDB's 3 weeks in ms;
        1814400 when the unit is SECONDS).  An existing keyspace's spec always wins.""",
        key="cassandra.row_width",
        env="KAIROSDB_CASSANDRA_ROW_WIDTH",
        check=POSITIVE,
    )
    cassandra_row_time_unit: str = setting(
        "MILLISECONDS",
        "``MILLISECONDS`` or ``SECONDS`` for a new keyspace (``LEGACY`` is detected, never chosen).",
        key="cassandra.row_time_unit",
        env="KAIROSDB_CASSANDRA_ROW_TIME_UNIT",
        check=one_of("MILLISECONDS", "SECONDS", fold=str.upper, message="MILLISECONDS or SECONDS"),
    )
    cassandra_simultaneous_queries: int = setting(
        20,
        "Partition reads in flight per query (KairosDB's ``simultaneous_cql_queries``).",
        key="cassandra.simultaneous_queries",
        env="KAIROSDB_CASSANDRA_SIMULTANEOUS_QUERIES",
        check=at_least(1),
    )
    cassandra_write_concurrency: int = setting(
        32,
        "Write requests (unlogged per-partition batches) the writer keeps in flight.",
        key="cassandra.write_concurrency",
        env="KAIROSDB_CASSANDRA_WRITE_CONCURRENCY",
        check=at_least(1),
    )
    cassandra_row_key_cache_size: int = setting(
        50000,
        "Row keys the writer remembers as indexed (KairosDB's ``row_key_cache_size``).",
        key="cassandra.row_key_cache_size",
        check=at_least(1),
    )
    cassandra_connect_timeout_seconds: float = setting(
        10.0,
        "How long one attempt to connect to the cluster may take.",
        key="cassandra.connect_timeout_seconds",
    )
    cassandra_reconnect_max_seconds: float = setting(
        2.0,
        """Longest wait between two attempts to connect (from 0.25 s, doubling): at start-up
        while Cassandra is down, and the driver's reconnection to a node that went away.""",
        key="cassandra.reconnect_max_seconds",
        env="KAIROSDB_CASSANDRA_RECONNECT_MAX_SECONDS",
        check=Check(lambda v: 0 < v < math.inf, "must be a finite number > 0"),
    )
    log_level: str = setting(
        "info",
        "trace, debug, info, warning or error.",
        env="KAIROSDB_LOG_LEVEL",
        check=one_of("trace", "debug", "info", "warning", "error", fold=str.lower),
    )
    log_format: str = setting(
        "text",
        "``text`` or ``json`` (one object per line).",
        env="KAIROSDB_LOG_FORMAT",
        check=one_of("text", "json"),
    )

    @property
    def api_groups(self) -> frozenset[str]:
        """The enabled API groups among INGEST, QUERY and DELETE."""
        types = {t for t in self.server_type.replace(" ", "").split(",") if t}
        return frozenset({"INGEST", "QUERY", "DELETE"} if "ALL" in types else types)

    @property
    def runs_writer(self) -> bool:
        """Whether this service runs the writer process (anything that writes or deletes)."""
        return bool(self.api_groups & {"INGEST", "DELETE"})

    @property
    def max_body_bytes(self) -> int:
        return int(self.ingestion_max_body_mb * 1024 * 1024)

    @property
    def metadata_max_value_bytes(self) -> int:
        return int(self.metadata_max_value_mb * 1024 * 1024)

    @property
    def inflight_body_bytes(self) -> int:
        """The body budget of one worker (``max_inflight_body_mb``, or its default)."""
        mb = self.max_inflight_body_mb or self.max_memory_mb / 4
        return int(mb * 1024 * 1024)

    def validate(self) -> Config:
        """``self``, when every field passes its check (in declaration order)."""
        for s in SETTINGS.values():
            value = getattr(self, s.name)
            if s.check is not None and not s.check.ok(value):
                raise ConfigError(f"{s.key}: {s.check.message}, got {value!r}")
        return self


def _declarations() -> dict[str, Setting]:
    out = {}
    for f in fields(Config):
        s = dataclasses.replace(
            f.metadata["setting"],
            key=f.metadata["setting"].key or f.name,
            name=f.name,
            type=f.type if isinstance(f.type, str) else f.type.__name__,
            default=f.default,
        )
        # The YAML lookup flattens sections with "_": the key must flatten to the attribute.
        assert s.key.replace(".", "_") == f.name, f.name
        if s.parse is None:
            s = dataclasses.replace(s, parse=_PARSERS[s.type])
        if s.option is None:  # every setting is reachable from the command line
            s = dataclasses.replace(s, option="--" + f.name.replace("_", "-"))
        out[f.name] = s
    return out


SETTINGS: dict[str, Setting] = _declarations()
"""Attribute name -> its declaration, in declaration order."""


def _env_table() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for s in SETTINGS.values():
        for var in s.env:
            out[var] = (*out.get(var, ()), s.name)
    return out


ENV: dict[str, tuple[str, ...]] = _env_table()
"""Environment variable -> the attributes it sets (``KAIROSDB_BIND_ADDRESS``: host and port)."""


def cassandra_contact_points(cfg: Config) -> list[tuple[str, int]]:
    """The contact points as (host, port) pairs."""
    out = []
    for part in cfg.cassandra_contact_points.split(","):
        part = part.strip()
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "9042")
        out.append((host.strip("[]"), int(port)))
    return out


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "_"))
        else:
            out[key] = v
    return out


def _set(cfg: Config, s: Setting, value: Any, label: str, parse: Callable[[str, Any], Any]) -> None:
    """Parses ``value`` from the source ``label`` into field ``s`` of ``cfg``."""
    try:
        parsed = parse(label, value)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{label}: invalid value {value!r} for {s.name}") from None
    setattr(cfg, s.name, parsed)


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as e:
        raise ConfigError(f"config file {path!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path!r}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path!r}: expected a mapping at the top level")
    return _flatten(doc)


def load(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    **overrides: Any,
) -> Config:
    """Defaults (``defaults`` over the built-in ones) < YAML file ``path`` < environment ``env``
    (default ``os.environ``) < ``overrides`` (attribute names; None skipped, as an option not
    given), then :meth:`Config.validate`."""
    cfg = Config(**(defaults or {}))
    if path:
        for key, value in _read_yaml(path).items():
            if key not in SETTINGS:
                raise ConfigError(f"{path}: unknown key {key!r}")
            _set(cfg, SETTINGS[key], value, key, SETTINGS[key].parser())
    env = os.environ if env is None else env
    for s in SETTINGS.values():
        for var in s.env:
            if env.get(var) not in (None, ""):
                _set(cfg, s, env[var], var, s.parser(from_env=True))
    for name, value in overrides.items():
        if value is not None:
            s = SETTINGS[name]
            _set(cfg, s, value, s.option or f"--{name.replace('_', '-')}", s.parser())
    return cfg.validate()
