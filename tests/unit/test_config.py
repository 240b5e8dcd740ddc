"""Configuration: precedence of every layer and start-up validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.config import ConfigError, load

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
    ],
)
def test_invalid_values_name_key_and_value(env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(env=env)
    assert message in str(e.value)


def test_unknown_yaml_key(tmp_path: Path) -> None:
    y = tmp_path / "k.yaml"
    y.write_text("ingestion:\n  default_snyc: true\n")
    with pytest.raises(ConfigError, match="unknown key 'ingestion_default_snyc'"):
        load(str(y), env={})


def test_cli_reports_invalid_configuration(capsys) -> None:
    from kairos.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "workers: must be between 1 and 256, got 0" in capsys.readouterr().err
