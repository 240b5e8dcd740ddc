"""Configuration: precedence of every layer and start-up validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.config import load
from kairos.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


@pytest.mark.parametrize("name", ["development.yaml", "production.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load(str(CONFIG_DIR / name), env={})
    assert cfg.ingestion_default_sync is (name == "production.yaml")


def test_defaults() -> None:
    cfg = load(env={})
    assert (cfg.host, cfg.port, cfg.data_dir) == ("127.0.0.1", 8080, "./data")
    assert cfg.ingestion_max_batch_size == 10000
    assert cfg.ingestion_default_sync is False
    assert cfg.ingestion_fsync_interval_ms == 1000


def test_precedence_yaml_env_override(tmp_path: Path) -> None:
    y = tmp_path / "k.yaml"
    y.write_text("port: 9000\ningestion:\n  default_sync: true\n  max_batch_size: 5\n")
    assert load(str(y), env={}).port == 9000
    cfg = load(str(y), env={"KAIROSDB_DEFAULT_SYNC": "false", "KAIROSDB_MAX_BATCH_SIZE": "7"})
    assert cfg.ingestion_default_sync is False
    assert cfg.ingestion_max_batch_size == 7
    assert cfg.port == 9000
    cfg = load(str(y), env={"KAIROSDB_BIND_ADDRESS": "0.0.0.0:9100"}, port=9200)
    assert (cfg.host, cfg.port) == ("0.0.0.0", 9200)
    assert load(env={"KAIROSDB_DATA_DIR": "/x"}, data_dir="/y").data_dir == "/y"
    assert load(env={"KAIROSDB_DATA_DIR": "/x"}).data_dir == "/x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAIROSDB_BIND_ADDRESS": "nohost"},
            "KAIROSDB_BIND_ADDRESS: expected host:port, got 'nohost'",
        ),
        ({"KAIROSDB_BIND_ADDRESS": "h:99999"}, "KAIROSDB_BIND_ADDRESS: port out of range"),
        (
            {"KAIROSDB_DEFAULT_SYNC": "maybe"},
            "KAIROSDB_DEFAULT_SYNC: expected true or false, got 'maybe'",
        ),
        ({"KAIROSDB_MAX_BATCH_SIZE": "lots"}, "KAIROSDB_MAX_BATCH_SIZE: invalid value 'lots'"),
        ({"KAIROSDB_MAX_BATCH_SIZE": "0"}, "ingestion.max_batch_size: must be at least 1, got 0"),
        (
            {"KAIROSDB_LOG_LEVEL": "loud"},
            "log_level: must be trace, debug, info, warning or error, got 'loud'",
        ),
        ({"KAIROSDB_DATASTORE": "h2"}, "datastore: must be embedded or cassandra, got 'h2'"),
        (
            {"KAIROSDB_CASSANDRA_CONTACT_POINTS": "a:1,b:x"},
            "cassandra.contact_points: expected host[:port] list, got 'a:1,b:x'",
        ),
        (
            {"KAIROSDB_CASSANDRA_WRITE_CONSISTENCY": "MOST"},
            "cassandra.write_consistency: not a consistency level, got 'MOST'",
        ),
        (
            {"KAIROSDB_CASSANDRA_KEYSPACE": "kairos-db"},
            "cassandra.keyspace: letters, digits and _ only, got 'kairos-db'",
        ),
        ({"KAIROSDB_MAX_MEMORY_MB": "0"}, "max_memory_mb: must be at least 1, got 0"),
        (
            {"KAIROSDB_WAL_MAX_BACKLOG_MB": "-1"},
            "wal_max_backlog_mb: must be a positive number, got -1.0",
        ),
        ({"KAIROSDB_WORKER_THREADS": "x"}, "KAIROSDB_WORKER_THREADS: invalid value 'x'"),
    ],
)
def test_invalid_values_name_key_and_value(env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(env=env)
    assert message in str(e.value)


def test_datastore_and_cassandra_settings(tmp_path: Path) -> None:
    from kairos.config import cassandra_contact_points

    cfg = load(env={})
    assert cfg.datastore == "embedded"
    assert cassandra_contact_points(cfg) == [("localhost", 9042)]
    assert (cfg.cassandra_keyspace, cfg.max_memory_mb, cfg.worker_threads) == ("kairosdb", 1024, 4)
    y = tmp_path / "k.yaml"
    y.write_text("datastore: cassandra\ncassandra:\n  contact_points: c1, c2:9043\n")
    cfg = load(str(y), env={"KAIROSDB_CASSANDRA_KEYSPACE": "metrics"})
    assert cfg.datastore == "cassandra"
    assert cassandra_contact_points(cfg) == [("c1", 9042), ("c2", 9043)]
    assert cfg.cassandra_keyspace == "metrics"
    env = {"KAIROSDB_DATASTORE": "embedded", "KAIROSDB_CASSANDRA_CONTACT_POINTS": "x"}
    assert load(str(y), env=env).datastore == "embedded"


def test_unknown_yaml_key(tmp_path: Path) -> None:
    y = tmp_path / "k.yaml"
    y.write_text("ingestion:\n  default_snyc: true\n")
    with pytest.raises(ConfigError, match="unknown key 'ingestion_default_snyc'"):
        load(str(y), env={})


def test_cli_reports_invalid_configuration(capsys) -> None:
    from kairos.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "workers: must be between 1 and 256, got 0" in capsys.readouterr().err


def test_allocator_setting(tmp_path: Path) -> None:
    assert load(env={}).allocator == "malloc"
    assert load(env={"KAIROSDB_ALLOCATOR": "jemalloc"}).allocator == "jemalloc"
    assert load(env={"KAIROSDB_ALLOCATOR": "jemalloc"}, allocator="malloc").allocator == "malloc"
    y = tmp_path / "k.yaml"
    y.write_text("allocator: glibc\n")
    with pytest.raises(ConfigError, match=r"^allocator: malloc or jemalloc, got 'glibc'$"):
        load(str(y), env={})


def test_every_setting_is_declared_once() -> None:
    from dataclasses import fields

    from kairos.config import ENV, SETTINGS, Config

    assert list(SETTINGS) == [f.name for f in fields(Config)]
    for s in SETTINGS.values():
        assert s.doc, s.name
        assert s.key.replace(".", "_") == s.name
        assert s.default == getattr(Config(), s.name)
    assert ENV["KAIROSDB_BIND_ADDRESS"] == ("host", "port")
    assert ENV["KAIROSDB_MAX_BATCH_SIZE"] == ("ingestion_max_batch_size",)
    assert all(var.startswith("KAIROSDB_") for var in ENV)
    # Direct construction is validated by the same checks as loading.
    with pytest.raises(ConfigError, match=r"^cassandra.row_width: must be positive, got 0$"):
        Config(cassandra_row_width=0).validate()
