"""``kairos perf``: scenario validation, deterministic data, unique points, valid bodies."""

from __future__ import annotations

import gzip
import http.server
import threading

import numpy as np
import orjson
import pytest

from kairos.cli import _parser
from kairos.ingest.parser import parse_datapoints
from kairos.model.histogram import Histogram
from kairos.perf import SCENARIOS, SUITES, ScenarioError
from kairos.perf.data import PayloadFactory, metric_names
from kairos.perf.report import append_csv, per_second, trend_row
from kairos.perf.runner import RunResult, drain
from kairos.perf.scenarios import get, select_suite

BASE_MS = 1_795_000_000_000  # a multiple of ROUND_MS


def small(name: str, **kw):
    defaults = {"batch_size": 40, "pool_points": 200, "concurrency": 3}
    if SCENARIOS[name].kind == "histogram":
        defaults = {"batch_size": 4, "pool_points": 12, "concurrency": 3}
    return get(name).with_overrides(**{**defaults, **kw})


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_validates_and_lists_its_parameters(name):
    sc = get(name)
    assert sc.name == name
    assert sc.series == sc.metrics * sc.tag_combinations
    d = sc.to_dict()
    assert d["series"] == sc.series and d["duration"] == sc.duration
    assert get(name).with_overrides(duration=5, concurrency=1).duration == 5


def test_issue_parameters():
    assert (SCENARIOS["small_scale"].metrics, SCENARIOS["small_scale"].duration) == (50, 30)
    assert (SCENARIOS["medium_scale"].metrics, SCENARIOS["medium_scale"].duration) == (500, 120)
    assert (SCENARIOS["large_scale"].metrics, SCENARIOS["large_scale"].duration) == (2000, 300)
    assert (SCENARIOS["stress_test"].metrics, SCENARIOS["stress_test"].duration) == (5000, 600)
    assert SCENARIOS["stress_test"].ramp
    hc = SCENARIOS["high_cardinality"]
    assert (hc.metrics, hc.tag_combinations) == (100, 1000)
    assert SCENARIOS["memory_pressure"].histogram_samples == (1000, 5000)
    assert SUITES["all"] == tuple(SCENARIOS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"duration": 0}, "small_scale: duration must be > 0 seconds (got 0)"),
        ({"duration": "10"}, "small_scale: duration must be a number (got '10')"),
        ({"batch_size": 0}, "small_scale: batch_size must be an integer >= 1 (got 0)"),
        ({"concurrency": 2.5}, "small_scale: concurrency must be an integer >= 1 (got 2.5)"),
        ({"kind": "text"}, "small_scale: kind must be 'numeric' or 'histogram' (got 'text')"),
        (
            {"batch_size": 10, "pool_points": 5},
            "small_scale: pool_points (5) must be >= batch_size (10)",
        ),
        ({"colour": "red"}, "small_scale: unknown parameter(s) colour"),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(ScenarioError) as e:
        get("small_scale").with_overrides(**overrides)
    assert str(e.value) == message


def test_unknown_scenario_and_suite_filters():
    with pytest.raises(ScenarioError, match="unknown scenario 'tiny'; known: small_scale, "):
        get("tiny")
    assert select_suite("all", only=["large_batch", "small_scale"]) == [
        "small_scale",
        "large_batch",
    ]
    assert "stress_test" not in select_suite("all", skip=["stress_test"])
    assert select_suite("small_scale") == ["small_scale"]
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        select_suite("all", skip=["nope"])
    with pytest.raises(ScenarioError, match="selects no scenario"):
        select_suite("quick", only=["stress_test"])


def bodies(sc, seed: int, senders: int, rounds: int = 2) -> list[bytes]:
    out = []
    for k in range(senders):
        pool = PayloadFactory(sc, seed, k, senders, BASE_MS, "r1").pool()
        for r in range(rounds):
            out += [gzip.decompress(p.body) if p.gzip else p.body for p in pool.round(r)]
    return out


@pytest.mark.parametrize("name", ["small_scale", "high_frequency", "memory_pressure"])
def test_generation_is_deterministic_for_a_seed(name):
    sc = small(name)
    assert bodies(sc, 7, 3) == bodies(sc, 7, 3)
    assert bodies(sc, 7, 3) != bodies(sc, 8, 3)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_points_are_unique_per_series_and_timestamp_across_senders_and_rounds(name):
    sc = small(name, gzip=True)
    seen = set()
    n = 0
    names = set(metric_names(sc))
    for b in bodies(sc, 1, 3, rounds=3):
        for e in orjson.loads(b):
            assert e["name"] in names
            assert e["tags"]["perf_run"] == "r1"
            key = (e["name"], tuple(sorted(e["tags"].items())))
            for ts, _ in e["datapoints"]:
                assert ts >= BASE_MS
                seen.add((key, ts))
                n += 1
    assert n == 3 * 3 * (sc.pool_points // sc.batch_size) * sc.batch_size
    assert len(seen) == n


def test_tags_are_consistent_per_host():
    sc = small("high_cardinality")
    by_host: dict[str, dict] = {}
    for b in bodies(sc, 3, 1):
        for e in orjson.loads(b):
            assert set(e["tags"]) == {"service", "environment", "region", "host", "perf_run"}
            assert by_host.setdefault(e["tags"]["host"], e["tags"]) == e["tags"]
            assert e["tags"]["host"].startswith(e["tags"]["service"] + "-")


def test_numeric_bodies_parse_as_kairosdb_json():
    sc = small("small_scale")
    for b in bodies(sc, 2, 2)[:5]:
        r = parse_datapoints(b)
        assert r.errors == []
        assert len(r.batch) == sc.batch_size


@pytest.mark.parametrize("path", ["per_metric", "vectorised"])
def test_values_follow_three_distributions(path):
    sc = get("small_scale")
    f = PayloadFactory(sc, 0, 0, 1, BASE_MS, "r")
    if path == "per_metric":  # histogram samples
        normal, expo, bimodal = (f.values(m, 20_000) for m in (0, 1, 2))
    else:  # numeric bodies
        normal, expo, bimodal = (f._values_of(np.full(20_000, m)) for m in (0, 1, 2))
    assert abs(normal.mean() - f.loc[0]) < 5 * f.scale[0] / np.sqrt(20_000)
    assert abs(normal.std() - f.scale[0]) < 0.05 * f.scale[0]
    assert expo.min() >= 0 and abs(expo.mean() - f.scale[1]) < 0.05 * f.scale[1]
    # Bimodal: about 30 % of the samples around 3x the location.
    assert 0.27 < np.mean(bimodal > 2 * f.loc[2]) < 0.33


def test_histogram_bodies_are_valid_histograms_of_1k_to_5k_samples():
    sc = small("memory_pressure")
    n = 0
    for b in bodies(sc, 4, 1, rounds=1):
        r = parse_datapoints(b)
        assert r.errors == [] and len(r.batch) == sc.batch_size
        for e in orjson.loads(b):
            assert e["type"] == "histogram"
            for _, h in e["datapoints"]:
                hist = Histogram.from_json(h)
                assert len(h["counts"]) == len(h["boundaries"]) + 1
                assert 1000 <= sum(h["counts"]) <= 5000
                assert hist.min <= hist.max
                n += 1
    assert n == sc.pool_points


def test_per_second_buckets_and_trend_row(tmp_path):
    t = np.array([0.1, 0.5, 1.2, 2.9])
    lat = np.array([0.01, 0.02, 0.03, 0.5])
    r = RunResult(
        get("small_scale"), "http://x", "id", 0, 0.0, {}, t, lat,
        np.array([10, 10, 10, 10]), np.array([True, False, True, True]),
    )  # fmt: skip
    ps = per_second(r)
    assert ps["second"].tolist() == [0, 1, 2, 3]
    assert ps["points_per_s"].tolist() == [10, 10, 0, 10]
    assert ps["requests_per_s"].tolist() == [2, 1, 0, 1]
    assert ps["latency_mean_ms"][0] == pytest.approx(15.0)
    assert np.isnan(ps["latency_mean_ms"][2])
    summary = {
        "scenario": "small_scale", "url": "u", "run_id": "id", "seed": 0, "started_at": 0.0,
        "elapsed_s": 3.4, "points_per_s": 8.8, "requests_per_s": 1.2,
        "latency_ms": {"mean": 1, "median": 2, "p95": 3, "p99": 4, "min": 0, "max": 5},
        "success_rate": 0.75, "points_acknowledged": 30, "points_read_back": 30,
        "read_back_matches": True, "drain_s": None, "loadgen_cpu_cores": 0.1,
    }  # fmt: skip
    from kairos.perf.report import TREND_FIELDS

    path = tmp_path / "t.csv"
    append_csv(path, [trend_row(summary)], TREND_FIELDS)
    append_csv(path, [trend_row(summary)], TREND_FIELDS)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(TREND_FIELDS)
    assert len(lines) == 3 and lines[1] == lines[2]


def test_cli_documents_perf_options(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["perf", "run", "--help"])
    out = capsys.readouterr().out
    for opt in ("--url", "--duration", "--batch-size", "--concurrency", "--gzip", "--seed",
                "--report-dir", "--quiet"):  # fmt: skip
        assert opt in out
    args = _parser().parse_args(
        [
            "perf",
            "compare",
            "all",
            "--a",
            "http://a",
            "--b",
            "http://b",
            "--skip",
            "stress_test,large_scale",
        ]
    )
    assert (args.command, args.perf_command, args.skip) == (
        "perf",
        "compare",
        ["stress_test,large_scale"],
    )


def test_round_r_shifts_every_timestamp_by_r_rounds():
    from kairos.perf.data import ROUND_MS

    sc = small("small_scale")
    pool = PayloadFactory(sc, 5, 1, 2, BASE_MS, "r").pool()

    def points(body: bytes) -> list:
        return [(e["name"], ts, v) for e in orjson.loads(body) for ts, v in e["datapoints"]]

    r0 = [points(p.body) for p in pool.round(0)]
    r3 = [points(p.body) for p in pool.round(3)]
    assert r3 == [[(n, ts + 3 * ROUND_MS, v) for n, ts, v in b] for b in r0]
    assert pool.max_ts(3) == max(ts for b in r0 for _, ts, _ in b) + 3 * ROUND_MS


def test_a_pool_wider_than_a_round_is_refused():
    sc = get("small_scale").with_overrides(
        metrics=1, tag_combinations=1, batch_size=1000, pool_points=600_000, concurrency=2
    )
    with pytest.raises(ScenarioError, match=r"spans 1199999 ms of timestamps per series"):
        PayloadFactory(sc, 0, 0, 2, BASE_MS, "r").pool()


class _NoWriterHealth(http.server.BaseHTTPRequestHandler):
    """A server whose /health has no ``checks.Writer.wal_backlog_bytes`` (a Java KairosDB)."""

    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_drain_without_wal_backlog_waits_for_a_stable_read_back():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoWriterHealth)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        counts = iter([5, 8, 10, 10, 10, 99])
        seen = []

        def count() -> int:
            seen.append(next(counts))
            return seen[-1]

        r = drain(f"http://127.0.0.1:{srv.server_address[1]}", count, timeout=30, interval=0.01)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r["drain_method"] == "read-back stable"
    assert seen == [5, 8, 10, 10, 10]
    assert r["drain_s"] is not None and r["drain_s"] < 30


@pytest.mark.parametrize("command", [["run", "small_scale"], ["query"]])
def test_an_unreachable_url_is_a_clear_error(command, capsys, tmp_path):
    from kairos.cli import main
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    rc = main(["perf", *command, "--url", url, "--quiet", "--report-dir", str(tmp_path)])
    assert rc == 2
    assert capsys.readouterr().err.startswith(f"kairos perf: cannot reach {url}: ")
    assert list(tmp_path.iterdir()) == []
