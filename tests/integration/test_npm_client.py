"""The npm package ``kairosdb@0.0.3`` and its own mocha suite, run against a live Kairos.

The package ships ``test/unit/*.spec.js`` and ``test/common.js`` that talk to a real server
(clients.md §3.3): version (prefix ``KairosDB``), ``/api/v3/version`` must fail, ingest in the
``timestamp/value`` and ``datapoints`` forms, an invalid-JSON body (a JSON *string*) and an
invalid timestamp (``"astring"``) must be rejected, and a ``sum`` query with
``start_relative {"value":"1","unit":"years"}`` and ``{"value":"1","unit":"milliseconds"}``
sampling.  ``test/common.js`` hard-codes the target as ``global.options = {host, port}``
(a dead public host); a small ``--require``'d file after it points the suite at our server.

The packages are installed once into ``.cache/npm-kairosdb`` (git-ignored) with the pinned list
``NPM_PACKAGES`` of the Makefile (``make node-deps`` does the same install).  Node.js and npm must
be installed: the test fails, not skips, without them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, start_server

pytestmark = pytest.mark.integration

NPM_DIR = ROOT / ".cache" / "npm-kairosdb"
STAMP = NPM_DIR / ".installed"
PKG = NPM_DIR / "node_modules" / "kairosdb"
MOCHA = NPM_DIR / "node_modules" / "mocha" / "bin" / "mocha.js"

# The suite's 12 cases; all of them pass against Kairos.
EXPECTED_PASSING = 12

# Suite cases excluded with ``--grep … --invert`` because of a known Kairos incompatibility,
# as ``{full mocha title: reason}``.  Empty: every case passes.
EXCLUDED: dict[str, str] = {}

MOCHA_TIMEOUT_S = 120


def _npm_packages() -> list[str]:
    """The pinned package list, read from the Makefile's ``NPM_PACKAGES`` (one source of truth)."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(r"^NPM_PACKAGES\s*:=\s*(.+)$", text, re.MULTILINE)
    if m is None:
        pytest.fail("Makefile has no NPM_PACKAGES := … line (the node-deps target's package list)")
    return m[1].split()


def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm are required for the kairosdb@0.0.3 client suite "
            f"(node={node}, npm={npm}); install Node.js >= 20 with npm "
            "(e.g. `apt-get install nodejs npm`), then `make node-deps`"
        )
    return node, npm


def _install(npm: str) -> None:
    """``npm install`` the pinned packages into NPM_DIR unless the stamp says it is done."""
    packages = _npm_packages()
    wanted = " ".join(packages)
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (make and pytest alike)
        if (
            STAMP.is_file()
            and STAMP.read_text().strip() == wanted
            and (PKG / "package.json").is_file()
            and MOCHA.is_file()
        ):
            return
        manifest = NPM_DIR / "package.json"
        if not manifest.is_file():  # keep npm from walking up to another project
            manifest.write_text('{"name": "kairos-npm-kairosdb", "private": true}\n')
        cmd = [npm, "install", "--prefix", str(NPM_DIR), "--no-audit", "--no-fund"]
        cmd += ["--save-exact", *packages]
        env = {**os.environ, "npm_config_update_notifier": "false"}
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{' '.join(cmd)}` timed out after 600 s")
        if r.returncode != 0:
            pytest.fail(f"`{' '.join(cmd)}` failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        STAMP.write_text(wanted + "\n")


def _prepare() -> str:
    """Node's path, after installing the suite if needed (fails, never skips, without node)."""
    node, npm = _require_node()
    _install(npm)
    version = json.loads((PKG / "package.json").read_text())["version"]
    assert version == "0.0.3", version
    return node


_TARGET_JS = """\
// Loaded after kairosdb/test/common.js, which sets global.options to a dead public host.
global.options = {host: '127.0.0.1', port: %(port)d};
// "connectivity should fail accessing kairosdb that does not exist" calls kdb.init() with no
// arguments, i.e. the library default 127.0.0.1:8080.  Send that call to a port that is known
// to be closed, so a server someone runs on 8080 cannot turn the check into a false failure.
var kdb = require(%(lib)s);
var init = kdb.init;
kdb.init = function (host, port, options) {
  if (host === undefined && port === undefined)
    return init('127.0.0.1', %(dead_port)d, options);
  return init(host, port, options);
};
"""


def _summary(out: str) -> dict[str, int]:
    counts = {}
    for what in ("passing", "failing", "pending"):
        m = re.search(rf"^\s*(\d+) {what}\b", out, re.MULTILINE)
        counts[what] = int(m[1]) if m else 0
    return counts


def test_kairosdb_npm_mocha_suite(tmp_path: Path) -> None:
    node = _prepare()
    srv = start_server(tmp_path / "data")
    try:
        target = tmp_path / "target.js"
        target.write_text(
            _TARGET_JS
            % {
                "port": srv.port,
                "dead_port": free_port(),
                "lib": json.dumps(str(PKG / "lib" / "kairosdb.js")),
            }
        )
        # --exit: mocha >= 4 waits for open handles (Node's keep-alive sockets to the server)
        # instead of exiting when the suite is done, as the mocha of the package's day did.
        cmd = [node, str(MOCHA), "--exit", "--no-config", "--no-package", "--no-color"]
        cmd += ["--require", str(PKG / "test" / "common.js"), "--require", str(target)]
        cmd += ["--recursive", "--timeout", "5000", "--reporter", "spec"]
        if EXCLUDED:
            titles = "|".join(re.escape(t) for t in EXCLUDED)
            cmd += ["--grep", f"^(?:{titles})$", "--invert"]
        cmd.append(str(PKG / "test" / "unit"))
        try:
            r = subprocess.run(
                cmd, cwd=NPM_DIR, capture_output=True, text=True, timeout=MOCHA_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"mocha did not finish in {MOCHA_TIMEOUT_S} s:\n{e.stdout}\n{srv.log()}")
        out = r.stdout + r.stderr
        counts = _summary(r.stdout)
        assert r.returncode == 0, (
            f"mocha exited {r.returncode}:\n{out}\n--- kairos log ---\n{srv.log()}"
        )
        assert counts == {"passing": EXPECTED_PASSING, "failing": 0, "pending": 0}, out

        # The suite only checks that the calls succeed; check that its writes really landed.
        srv.wait_applied()
        with srv.client() as c:

            def results(name: str) -> list[dict]:
                body = {"start_absolute": 0, "metrics": [{"name": name}]}
                q = c.post("/api/v1/datapoints/query", json=body)
                assert q.status_code == 200, q.text
                return q.json()["queries"][0]["results"]

            [tracked] = results("archive_file_tracked")
            assert tracked["values"] == [
                [1359788300000, 13.2],
                [1359788400000, 123],
                [1359788410000, 23.1],
            ]
            assert tracked["tags"] == {"data_center": ["DC1"], "host": ["server1"]}
            [search] = results("archive_file_search")
            assert search["values"] == [[1359786400000, 321]]
            # One point from "should save a datapoint"; the invalid-JSON and invalid-timestamp
            # bodies for the same metric were rejected without storing anything.
            [single] = results("metric_for_or")
            assert [v for _, v in single["values"]] == [321]
            [multi] = results("metric_for_or2")
            assert multi["tags"] == {"host": ["server2"], "realm": ["unknown"]}
            assert [v for _, v in multi["values"]] == [321]
    finally:
        srv.stop()


def test_invalid_json_string_body_is_rejected(client) -> None:
    """What the suite's "should fail on invalid json" sends: a JSON *string* (clients.md §3.4)."""
    payload = '[{"name":metric_for_or","timestamp":1393509598745,"value":321}]'
    body = json.dumps(payload)  # the client JSON.stringify()s the string
    r = client.post(
        "/api/v1/datapoints", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"], r.text
