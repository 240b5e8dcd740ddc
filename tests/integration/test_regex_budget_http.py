"""A catastrophic ``regex:`` tag filter cannot stall a server (issue 14, item 3).

With Python's ``re``, ``(a|aa)+$`` against ``"a" * 40 + "!"`` backtracks for minutes while
holding the GIL: the query timeout cannot interrupt it and the worker's event loop (``/health``,
every other request) freezes.  Now each bad query answers 400 once its regex budget runs out,
and the worker keeps serving meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration

EVIL = "a" * 40 + "!"
BUDGET_MS = 3000  # wide, so the other requests surely land while the bad ones run
CLIENT_TIMEOUT = 20.0  # without the budget the bad queries would hang; fail rather than wait


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One HTTP worker: the bad queries, /health and the normal query share its event loop.
    s = start_server(
        tmp_path_factory.mktemp("regex") / "data",
        env={"KAIROSDB_QUERY_REGEX_TIMEOUT_MS": str(BUDGET_MS)},
        workers=1,
    )
    with httpx.Client(base_url=s.url, timeout=CLIENT_TIMEOUT) as c:
        body = [
            {"name": "rx", "datapoints": [[1000, i]], "tags": {"t": v}}
            for i, v in enumerate([EVIL, "aa28", "b1", "b2"])
        ]
        assert c.post("/api/v1/datapoints", json=body).status_code == 204
    s.wait_applied()
    yield s
    s.kill()  # an unfixed server may still be backtracking


def query(pattern: str) -> dict:
    return {"start_absolute": 0, "metrics": [{"name": "rx", "tags": {"t": [f"regex:{pattern}"]}}]}


def tag_values(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(v for res in r.json()["queries"][0]["results"] for v in res["tags"]["t"])


def test_the_issues_pattern_answers(srv: Server) -> None:
    with httpx.Client(base_url=srv.url, timeout=CLIENT_TIMEOUT) as c:
        assert tag_values(c.post("/api/v1/datapoints/query", json=query("(a+)+$"))) == []
        assert tag_values(c.post("/api/v1/datapoints/query", json=query("b."))) == ["b1", "b2"]


@pytest.mark.parametrize("path", ["/api/v1/datapoints/query", "/api/v1/datapoints/query/tags"])
def test_catastrophic_regexes_answer_400_while_the_server_keeps_serving(
    srv: Server, path: str
) -> None:
    bad: list[httpx.Response | BaseException] = []
    done = threading.Event()
    running = 2

    def fire() -> None:
        nonlocal running
        try:
            with httpx.Client(base_url=srv.url, timeout=CLIENT_TIMEOUT) as c:
                bad.append(c.post(path, json=query("(a|aa)+$")))
        except BaseException as e:
            bad.append(e)
        finally:
            running -= 1
            if not running:
                done.set()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let both reach the regex (not a timing assertion: checked below)
    with httpx.Client(base_url=srv.url, timeout=CLIENT_TIMEOUT) as c:
        health = c.get("/health")
        normal = c.post("/api/v1/datapoints/query", json=query("b."))
        # Both answered while the bad queries were still in flight.
        assert not done.is_set(), "the bad queries finished before the others were sent"
    for t in threads:
        t.join(CLIENT_TIMEOUT + 5)
    assert health.status_code == 200, health.text
    assert tag_values(normal) == ["b1", "b2"]
    assert len(bad) == 2
    for r in bad:
        assert isinstance(r, httpx.Response), r
        assert r.status_code == 400, r.text
        (msg,) = r.json()["errors"]
        assert "regex:(a|aa)+$" in msg, msg
        assert f"within {BUDGET_MS} ms (KAIROSDB_QUERY_REGEX_TIMEOUT_MS)" in msg, msg
