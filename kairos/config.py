"""Kairos configuration: one typed object, loaded as defaults < YAML < environment.

Per-request parameters (``?sync=true``) override the result at request time.  ``load`` validates
every field once at start-up and raises :class:`ConfigError` naming the key and the bad value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from kairos.errors import ConfigError

__all__ = ["Config", "cassandra_contact_points", "load"]


def _parse_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {v!r}")


def _parse_address(key: str, v: str) -> tuple[str, int]:
    host, sep, port = str(v).rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{key}: expected host:port, got {v!r}")
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"{key}: port must be a number, got {v!r}") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"{key}: port out of range, got {v!r}")
    return host.strip("[]"), p


@dataclass
class Config:
    """Every setting, with its default.  YAML keys are the field names (nested sections are
    flattened with ``_``: ``ingestion: {default_sync: true}`` sets ``ingestion_default_sync``)."""

    host: str = "127.0.0.1"
    """Address the HTTP server binds (``KAIROSDB_BIND_ADDRESS`` host part)."""
    port: int = 8080
    """HTTP port (``KAIROSDB_BIND_ADDRESS`` port part)."""
    telnet_port: int = 4242
    """Telnet protocol port, bound on ``host`` in every HTTP worker (``KAIROSDB_TELNET_PORT``);
    0 disables it."""
    graphite_port: int = 2003
    """Graphite plaintext protocol port, bound on ``host`` (``KAIROSDB_GRAPHITE_PORT``);
    0 disables it."""
    data_dir: str = "./data"
    """Embedded datastore and WAL directory (``KAIROSDB_DATA_DIR``)."""
    workers: int = 2
    """HTTP worker processes (``KAIROSDB_HTTP_WORKERS``); the writer process is extra."""
    ingestion_default_sync: bool = False
    """Answer ingest only after the WAL fsync (``KAIROSDB_DEFAULT_SYNC``; ``?sync=`` wins)."""
    ingestion_fsync_interval_ms: int = 1000
    """Group-commit interval for non-sync ingest (``KAIROSDB_FSYNC_INTERVAL_MS``)."""
    ingestion_max_batch_size: int = 10000
    """Maximum data points in one ingest request (``KAIROSDB_MAX_BATCH_SIZE``); more is 413."""
    ingestion_max_body_mb: float = 64.0
    """Maximum ingest body size in MiB, compressed or decompressed (``KAIROSDB_MAX_BODY_MB``)."""
    max_memory_mb: int = 1024
    """Resident memory of one HTTP worker above which ingest answers 503 with ``Retry-After``
    (``KAIROSDB_MAX_MEMORY_MB``)."""
    wal_max_backlog_mb: float = 10240.0
    """Disk quota of the WAL: unapplied WAL bytes above which ingest answers 503 with
    ``Retry-After`` until the writer catches up (``KAIROSDB_WAL_MAX_BACKLOG_MB``)."""
    worker_threads: int = 4
    """Threads per HTTP worker for blocking work: queries and synchronous WAL fsyncs
    (``KAIROSDB_WORKER_THREADS``)."""
    writer_interval_ms: int = 200
    """How often the writer applies the WAL to the datastore (``KAIROSDB_WRITER_INTERVAL_MS``);
    data becomes queryable within about this long."""
    datastore: str = "embedded"
    """Backend: ``embedded`` (the built-in engine under ``data_dir``) or ``cassandra``
    (KairosDB's keyspace on Apache Cassandra; ``KAIROSDB_DATASTORE``).  The WAL stays under
    ``data_dir`` either way."""
    datastore_retention_seconds: int = 0
    """Embedded store: points with a timestamp older than now minus this many seconds are hidden
    from queries at once and dropped by the next compaction; 0 keeps everything
    (``KAIROSDB_DATASTORE_RETENTION_SECONDS``)."""
    datastore_compaction_fanout: int = 8
    """Embedded store: blocks of one level merged together into the next level
    (``KAIROSDB_DATASTORE_COMPACTION_FANOUT``, at least 2)."""
    datastore_default_ttl: int = 0
    """TTL in seconds for points ingested with ttl 0; 0 keeps them forever
    (``KAIROSDB_DATASTORE_DEFAULT_TTL``)."""
    query_max_points: int = 100_000_000
    """Most raw data points one query may read (``KAIROSDB_QUERY_MAX_POINTS``); more is a 400."""
    query_timeout_ms: int = 30_000
    """A query still running after this long is abandoned with a 503
    (``KAIROSDB_QUERY_TIMEOUT_MS``)."""
    cache_enable: bool = True
    """Query cache (``KAIROSDB_CACHE_ENABLE``): raw results reused by queries with
    ``cache_time`` (see :mod:`kairos.query.cache`)."""
    cache_max_mb: float = 128.0
    """Memory bound of each HTTP worker's query cache (``KAIROSDB_CACHE_MAX_MB``)."""
    server_type: str = "ALL"
    """``KAIROSDB_SERVER_TYPE``: ``ALL`` or a comma list of ``INGEST``, ``QUERY``, ``DELETE``
    (KairosDB's ``kairosdb.server.type``); disabled API groups answer 403.  ``kairos ingest``
    sets ``INGEST,DELETE`` and ``kairos query`` sets ``QUERY``."""
    health_healthy_response_code: int = 204
    """Status of a healthy ``/api/v1/health/check`` (KairosDB's healthyResponseCode)."""
    health_lb_delay_seconds: float = 3.0
    """On SIGTERM/SIGINT, seconds during which the health/readiness endpoints answer 503 while
    every other request is still served, so load balancers stop routing here before the server
    stops accepting (``KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS``); 0 = no wait."""
    version: str = "KairosDB 1.3.2-kairos.0.1.0"
    """Text of ``/api/v1/version``."""
    cassandra_contact_points: str = "localhost:9042"
    """``KAIROSDB_CASSANDRA_CONTACT_POINTS``: comma list of ``host[:port]`` (port 9042 when
    omitted)."""
    cassandra_keyspace: str = "kairosdb"
    """``KAIROSDB_CASSANDRA_KEYSPACE``."""
    cassandra_username: str = ""
    """``KAIROSDB_CASSANDRA_USERNAME`` (empty: no authentication)."""
    cassandra_password: str = ""
    """``KAIROSDB_CASSANDRA_PASSWORD``."""
    cassandra_replication: str = "{'class': 'SimpleStrategy','replication_factor' : 1}"
    """Replication map of a keyspace Kairos creates (``KAIROSDB_CASSANDRA_REPLICATION``)."""
    cassandra_write_consistency: str = "QUORUM"
    """``KAIROSDB_CASSANDRA_WRITE_CONSISTENCY`` (KairosDB's default QUORUM)."""
    cassandra_read_consistency: str = "ONE"
    """``KAIROSDB_CASSANDRA_READ_CONSISTENCY`` (KairosDB's default ONE)."""
    cassandra_row_width: int = 1814400000
    """Row width stored in the ``spec`` table by a new keyspace (KairosDB's 3 weeks in ms;
    1814400 when the unit is SECONDS).  An existing keyspace's spec always wins."""
    cassandra_row_time_unit: str = "MILLISECONDS"
    """``MILLISECONDS`` or ``SECONDS`` for a new keyspace (``LEGACY`` is detected, never chosen)."""
    cassandra_simultaneous_queries: int = 20
    """Partition reads in flight per query (KairosDB's ``simultaneous_cql_queries``)."""
    cassandra_write_concurrency: int = 32
    """Write requests (unlogged per-partition batches) the writer keeps in flight."""
    cassandra_row_key_cache_size: int = 50000
    """Row keys the writer remembers as indexed (KairosDB's ``row_key_cache_size``)."""
    cassandra_connect_timeout_seconds: float = 10.0
    """How long connecting to the cluster may take before a start-up fails."""
    log_level: str = "info"
    """``KAIROSDB_LOG_LEVEL``: trace, debug, info, warning or error."""
    log_format: str = "text"
    """``KAIROSDB_LOG_FORMAT``: ``text`` or ``json`` (one object per line)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown YAML keys are rejected; this holds nothing and exists for forward notes."""

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

    def validate(self) -> Config:
        if not 1 <= self.workers <= 256:
            raise ConfigError(f"workers: must be between 1 and 256, got {self.workers!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: out of range, got {self.port!r}")
        if not 0 <= self.telnet_port <= 65535:
            raise ConfigError(f"telnet_port: out of range, got {self.telnet_port!r}")
        if not 0 <= self.graphite_port <= 65535:
            raise ConfigError(f"graphite_port: out of range, got {self.graphite_port!r}")
        if self.ingestion_max_batch_size < 1:
            raise ConfigError(
                f"ingestion.max_batch_size: must be at least 1, got {self.ingestion_max_batch_size!r}"
            )
        if self.ingestion_max_body_mb <= 0:
            raise ConfigError(
                f"ingestion.max_body_mb: must be positive, got {self.ingestion_max_body_mb!r}"
            )
        if self.ingestion_fsync_interval_ms < 1:
            raise ConfigError(
                f"ingestion.fsync_interval_ms: must be at least 1, got {self.ingestion_fsync_interval_ms!r}"
            )
        if self.max_memory_mb < 1:
            raise ConfigError(f"max_memory_mb: must be at least 1, got {self.max_memory_mb!r}")
        if not 0 < self.wal_max_backlog_mb < float("inf"):
            raise ConfigError(
                f"wal_max_backlog_mb: must be a positive number, got {self.wal_max_backlog_mb!r}"
            )
        if not 0 <= self.cache_max_mb < float("inf"):
            raise ConfigError(f"cache_max_mb: must be a number >= 0, got {self.cache_max_mb!r}")
        if not 1 <= self.worker_threads <= 1024:
            raise ConfigError(
                f"worker_threads: must be between 1 and 1024, got {self.worker_threads!r}"
            )
        if self.writer_interval_ms < 0:
            raise ConfigError(f"writer.interval_ms: must be >= 0, got {self.writer_interval_ms!r}")
        if self.datastore_retention_seconds < 0:
            raise ConfigError(
                f"datastore.retention_seconds: must be >= 0, got {self.datastore_retention_seconds!r}"
            )
        if self.datastore_compaction_fanout < 2:
            raise ConfigError(
                f"datastore.compaction_fanout: must be at least 2, got {self.datastore_compaction_fanout!r}"
            )
        if self.datastore_default_ttl < 0:
            raise ConfigError(
                f"datastore.default_ttl: must be >= 0, got {self.datastore_default_ttl!r}"
            )
        types = {t for t in self.server_type.replace(" ", "").split(",") if t}
        if not types or not types <= {"ALL", "INGEST", "QUERY", "DELETE"}:
            raise ConfigError(
                f"server_type: must be ALL or a comma list of INGEST, QUERY, DELETE, got {self.server_type!r}"
            )
        if self.query_max_points < 1:
            raise ConfigError(
                f"query.max_points: must be at least 1, got {self.query_max_points!r}"
            )
        if self.query_timeout_ms < 1:
            raise ConfigError(
                f"query.timeout_ms: must be at least 1, got {self.query_timeout_ms!r}"
            )
        if not 0 <= self.health_lb_delay_seconds < float("inf"):  # also rejects NaN
            raise ConfigError(
                f"health.lb_delay_seconds: must be a finite number >= 0, got {self.health_lb_delay_seconds!r}"
            )
        if self.datastore not in ("embedded", "cassandra"):
            raise ConfigError(f"datastore: must be embedded or cassandra, got {self.datastore!r}")
        _check_cassandra(self)
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format: must be text or json, got {self.log_format!r}")
        if self.log_level.lower() not in ("trace", "debug", "info", "warning", "error"):
            raise ConfigError(
                f"log_level: must be trace, debug, info, warning or error, got {self.log_level!r}"
            )
        return self


_CONSISTENCY = (
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "LOCAL_ONE",
)


def _check_cassandra(cfg: Config) -> None:
    for part in cfg.cassandra_contact_points.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "9042")
        if not host.strip("[] ") or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ConfigError(
                f"cassandra.contact_points: expected host[:port] list, got {cfg.cassandra_contact_points!r}"
            )
    if not cfg.cassandra_keyspace.replace("_", "").isalnum():
        raise ConfigError(
            f"cassandra.keyspace: letters, digits and _ only, got {cfg.cassandra_keyspace!r}"
        )
    for key in ("cassandra_write_consistency", "cassandra_read_consistency"):
        value = getattr(cfg, key)
        if value.upper() not in _CONSISTENCY:
            raise ConfigError(f"{key.replace('_', '.', 1)}: not a consistency level, got {value!r}")
    if cfg.cassandra_row_time_unit.upper() not in ("MILLISECONDS", "SECONDS"):
        raise ConfigError(
            f"cassandra.row_time_unit: MILLISECONDS or SECONDS, got {cfg.cassandra_row_time_unit!r}"
        )
    if cfg.cassandra_row_width < 1:
        raise ConfigError(f"cassandra.row_width: must be positive, got {cfg.cassandra_row_width!r}")
    for key in (
        "cassandra_simultaneous_queries",
        "cassandra_write_concurrency",
        "cassandra_row_key_cache_size",
    ):
        if getattr(cfg, key) < 1:
            raise ConfigError(
                f"{key.replace('_', '.', 1)}: must be at least 1, got {getattr(cfg, key)!r}"
            )


def cassandra_contact_points(cfg: Config) -> list[tuple[str, int]]:
    """The contact points as (host, port) pairs."""
    out = []
    for part in cfg.cassandra_contact_points.split(","):
        part = part.strip()
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "9042")
        out.append((host.strip("[]"), int(port)))
    return out


_ENV = {
    "KAIROSDB_DATA_DIR": "data_dir",
    "KAIROSDB_HTTP_WORKERS": "workers",
    "KAIROSDB_DEFAULT_SYNC": "ingestion_default_sync",
    "KAIROSDB_FSYNC_INTERVAL_MS": "ingestion_fsync_interval_ms",
    "KAIROSDB_MAX_BATCH_SIZE": "ingestion_max_batch_size",
    "KAIROSDB_MAX_BODY_MB": "ingestion_max_body_mb",
    "KAIROSDB_WRITER_INTERVAL_MS": "writer_interval_ms",
    "KAIROSDB_DATASTORE_DEFAULT_TTL": "datastore_default_ttl",
    "KAIROSDB_DATASTORE_RETENTION_SECONDS": "datastore_retention_seconds",
    "KAIROSDB_DATASTORE_COMPACTION_FANOUT": "datastore_compaction_fanout",
    "KAIROSDB_LOG_LEVEL": "log_level",
    "KAIROSDB_LOG_FORMAT": "log_format",
    "KAIROSDB_QUERY_MAX_POINTS": "query_max_points",
    "KAIROSDB_SERVER_TYPE": "server_type",
    "KAIROSDB_QUERY_TIMEOUT_MS": "query_timeout_ms",
    "KAIROSDB_TELNET_PORT": "telnet_port",
    "KAIROSDB_GRAPHITE_PORT": "graphite_port",
    "KAIROSDB_HEALTH_LOAD_BALANCER_DETECTION_DELAY_SECONDS": "health_lb_delay_seconds",
    "KAIROSDB_DATASTORE": "datastore",
    "KAIROSDB_MAX_MEMORY_MB": "max_memory_mb",
    "KAIROSDB_WAL_MAX_BACKLOG_MB": "wal_max_backlog_mb",
    "KAIROSDB_WORKER_THREADS": "worker_threads",
    "KAIROSDB_CACHE_ENABLE": "cache_enable",
    "KAIROSDB_CACHE_MAX_MB": "cache_max_mb",
    "KAIROSDB_CASSANDRA_CONTACT_POINTS": "cassandra_contact_points",
    "KAIROSDB_CASSANDRA_KEYSPACE": "cassandra_keyspace",
    "KAIROSDB_CASSANDRA_USERNAME": "cassandra_username",
    "KAIROSDB_CASSANDRA_PASSWORD": "cassandra_password",
    "KAIROSDB_CASSANDRA_REPLICATION": "cassandra_replication",
    "KAIROSDB_CASSANDRA_WRITE_CONSISTENCY": "cassandra_write_consistency",
    "KAIROSDB_CASSANDRA_READ_CONSISTENCY": "cassandra_read_consistency",
    "KAIROSDB_CASSANDRA_ROW_WIDTH": "cassandra_row_width",
    "KAIROSDB_CASSANDRA_ROW_TIME_UNIT": "cassandra_row_time_unit",
    "KAIROSDB_CASSANDRA_SIMULTANEOUS_QUERIES": "cassandra_simultaneous_queries",
    "KAIROSDB_CASSANDRA_WRITE_CONCURRENCY": "cassandra_write_concurrency",
}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "_"))
        else:
            out[key] = v
    return out


def _coerce(cfg: Config, name: str, value: Any, source: str) -> None:
    f = {f.name: f for f in fields(Config)}[name]
    label = source
    try:
        if f.type in ("int", int):
            if isinstance(value, bool):
                raise ValueError
            value = int(str(value).strip())
        elif f.type in ("float", float):
            value = float(str(value).strip())
        elif f.type in ("bool", bool):
            value = _parse_bool(label, value)
        else:
            value = str(value)
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(f"{label}: invalid value {value!r} for {name}") from None
    setattr(cfg, name, value)


def load(
    path: str | None = None,
    env: dict[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    **overrides: Any,
) -> Config:
    """Defaults (``defaults`` over the built-in ones) < YAML file ``path`` < environment ``env``
    (default ``os.environ``) < overrides."""
    cfg = Config(**(defaults or {}))
    names = {f.name for f in fields(Config)} - {"extra"}
    if path:
        try:
            with open(path) as fh:
                doc = yaml.safe_load(fh) or {}
        except OSError as e:
            raise ConfigError(f"config file {path!r}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path!r}: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"config file {path!r}: expected a mapping at the top level")
        for key, value in _flatten(doc).items():
            if key not in names:
                raise ConfigError(f"{path}: unknown key {key!r}")
            _coerce(cfg, key, value, key)
    env = os.environ if env is None else env
    if env.get("KAIROSDB_BIND_ADDRESS"):
        cfg.host, cfg.port = _parse_address("KAIROSDB_BIND_ADDRESS", env["KAIROSDB_BIND_ADDRESS"])
    for var, name in _ENV.items():
        if env.get(var) not in (None, ""):
            _coerce(cfg, name, env[var], var)
    for name, value in overrides.items():
        if value is not None:
            _coerce(cfg, name, value, f"--{name.replace('_', '-')}")
    return cfg.validate()
