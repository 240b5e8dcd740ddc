"""The ``kairos`` command: options from the config declarations, the optional ``perf`` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kairos.cli import PERF_EXTRA, _parser, main
from kairos.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]


def test_serve_does_not_import_the_perf_extra(tmp_path: Path) -> None:
    # What `kairos serve` imports up to serving: the CLI, its parser, the config and the app.
    code = f"""
import sys
import kairos.cli
from kairos.config import load
args = kairos.cli._parser().parse_args(["serve", "--data-dir", {str(tmp_path)!r}])
cfg = load(env={{}}, data_dir=args.data_dir)
from kairos.app.factory import create_app
create_app(cfg)
print(sorted({{m.split(".")[0] for m in sys.modules}} & {set(PERF_EXTRA)!r}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("missing", PERF_EXTRA)
@pytest.mark.parametrize("argv", [["perf", "list"], ["perf", "run", "--help"]])
def test_perf_without_the_extra_is_one_clear_line(monkeypatch, capsys, missing, argv) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # find_spec -> None, import -> ImportError
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == "kairos perf needs the perf extra: pip install 'kairos[perf]'\n"
    assert captured.out == ""


def test_options_come_from_the_declarations(capsys) -> None:
    args = _parser().parse_args(["query", "--port", "9", "--allocator", "jemalloc"])
    assert (args.port, args.allocator, args.workers) == (9, "jemalloc", None)
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    for s in SETTINGS.values():
        if s.option:
            assert s.option in out
    assert "KAIROSDB_HTTP_WORKERS" in out
    with pytest.raises(SystemExit):
        _parser().parse_args(["query", "--help"])
    assert "KAIROSDB_QUERY_BIND_ADDRESS; default 0.0.0.0" in " ".join(
        capsys.readouterr().out.split()
    )


def test_an_unknown_allocator_is_a_configuration_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAIROSDB_ALLOCATOR", "tcmalloc")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "kairos: invalid configuration: KAIROSDB_ALLOCATOR: malloc or jemalloc, got 'tcmalloc'\n"
    )


def test_every_setting_is_an_option_with_its_environment_and_default(capsys) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for s in SETTINGS.values():
        assert s.option, s.name
        assert f"{s.option} " in out, s.option
        for var in s.env:
            assert var in out, var
    assert "--telnet-port TELNET_PORT Telnet" in out
    assert "KAIROSDB_LOG_LEVEL; default info." in out
    assert "KAIROSDB_CASSANDRA_PASSWORD; default none." in out


def test_long_tail_options_reach_the_config(tmp_path: Path) -> None:
    from kairos.config import load

    args = _parser().parse_args(
        ["serve", "--query-timeout-ms", "1234", "--cache-enable", "false", "--log-level", "debug"]
    )
    cfg = load(env={}, **{s.name: getattr(args, s.name) for s in SETTINGS.values()})
    assert (cfg.query_timeout_ms, cfg.cache_enable, cfg.log_level) == (1234, False, "debug")


def test_version(capsys) -> None:
    from kairos import __version__

    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"kairos {__version__} ({SETTINGS['version'].default})\n"


def test_top_level_help_points_at_the_settings(capsys) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--version" in out and "kairos serve --help" in out


def test_a_taken_line_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A port another process holds stops start-up before anything else happens: one line on
    stderr naming the listener, the address and what moves it; no traceback, no data dir."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        argv = ["serve", "--port", "0", "--data-dir", str(data), "--telnet-port", "0"]
        out = subprocess.run(
            [sys.executable, "-m", "kairos.cli", *argv, "--graphite-port", str(port)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr == (
        f"kairos: cannot start: the Graphite listener cannot bind 127.0.0.1:{port}: address "
        "already in use; KAIROSDB_GRAPHITE_PORT or --graphite-port moves it (0 disables it)\n"
    )
    assert not data.exists()
