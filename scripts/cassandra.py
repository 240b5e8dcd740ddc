#!/usr/bin/env python3
"""A single-node Apache Cassandra 5.0 for development and tests (stdlib only).

    python scripts/cassandra.py deps                      # download the jars (cached)
    python scripts/cassandra.py start [--dir D] [--port N] # start, wait until CQL answers
    python scripts/cassandra.py status [--dir D]
    python scripts/cassandra.py stop [--dir D]

The jars (``org.apache.cassandra:cassandra-all`` and its runtime dependencies, as pinned in
``scripts/cassandra/pom.xml``) are copied by Maven into ``.cache/cassandra/lib`` once. ``start``
writes a ``cassandra.yaml`` bound to 127.0.0.1 into the run directory (default
``.cache/cassandra/run``), starts ``CassandraDaemon`` on Java 17 with the module options of
Cassandra's own ``conf/jvm17-server.options`` and a small heap, records its pid and ports, and
waits until a CQL query answers on the native port. ``stop`` ends that pid (SIGTERM, then
SIGKILL). ``--port 0`` picks a free native port; the storage port is always a free one unless
given, so a run never clashes with another Cassandra on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "scripts" / "cassandra" / "pom.xml"
CACHE = ROOT / ".cache" / "cassandra"
LIB = CACHE / "lib"
RUN_DIR = CACHE / "run"
DEFAULT_NATIVE_PORT = 9042
START_TIMEOUT = 180.0
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"


# The nodes this process started, by pid, so that stop() can reap them (and Python does not warn
# about a Popen collected while its child runs).
_CHILDREN: dict[int, subprocess.Popen] = {}


class CassandraError(RuntimeError):
    """Cassandra could not be downloaded, started or reached; the message has the log tail."""


# --------------------------------------------------------------------------- downloads


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock between processes (concurrent test runs share the jar cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_deps(lib: Path = LIB, quiet: bool = False) -> Path:
    """Copy cassandra-all and its runtime jars into ``lib`` unless the pom's stamp is there."""
    lib = lib.resolve()
    stamp = lib / ".stamp"
    digest = _pom_digest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return lib
    with _locked(lib.parent / ".deps.lock"):
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise CassandraError("mvn not found: install Maven (apt-get install maven)")
        tmp = lib.parent / (lib.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ]
        if not quiet:
            print(f"cassandra: downloading jars into {lib}", file=sys.stderr)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not any(tmp.glob("cassandra-all-*.jar")):
            out = (r.stdout + r.stderr)[-4000:]
            raise CassandraError(f"{' '.join(cmd)} failed ({r.returncode}):\n{out}")
        # A new version replaces the old jars wholesale: two versions on one classpath clash.
        shutil.rmtree(lib, ignore_errors=True)
        tmp.rename(lib)
        stamp.write_text(digest + "\n")
    return lib


# --------------------------------------------------------------------------- configuration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def write_config(run: Path, native_port: int, storage_port: int) -> Path:
    """The smallest cassandra.yaml a single local node needs, everything under ``run``."""
    d = run.resolve()
    yaml = f"""\
# Written by scripts/cassandra.py: a single local node for development and tests.
cluster_name: kairos-dev
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {storage_port}
start_native_transport: true
native_transport_port: {native_port}
data_file_directories:
  - {d}/data
commitlog_directory: {d}/commitlog
saved_caches_directory: {d}/saved_caches
hints_directory: {d}/hints
cdc_raw_directory: {d}/cdc_raw
# Acknowledge a write only once its commit log entry is on disk (fsynced every 10 ms as a
# group): Kairos deletes WAL data once Cassandra acknowledged it, so a node killed with -9 must
# not lose acknowledged writes (the default, periodic, may lose the last 10 s).
commitlog_sync: group
commitlog_sync_group_window: 10ms
commitlog_segment_size: 16MiB
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
concurrent_compactors: 1
auto_snapshot: false
snapshot_before_compaction: false
incremental_backups: false
# Generous timeouts: tests share a small machine with other work.
request_timeout: 20000ms
read_request_timeout: 20000ms
range_request_timeout: 20000ms
write_request_timeout: 20000ms
counter_write_request_timeout: 20000ms
truncate_request_timeout: 60000ms
native_transport_timeout: 60000ms
"""
    path = d / "cassandra.yaml"
    path.write_text(yaml)
    (d / "logback.xml").write_text(
        """\
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT" /></root>
</configuration>
"""
    )
    return path


# Cassandra 5.0's conf/jvm17-server.options (module access Cassandra needs on Java 17).
JVM17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]


def java_command(run: Path, lib: Path, java: str) -> list[str]:
    d = run.resolve()
    jamm = sorted(lib.glob("jamm-*.jar"))
    return [
        java,
        # From conf/jvm-server.options, less what only matters for big production heaps.
        "-ea",
        "-da:net.openhft...",
        "-XX:+UseThreadPriorities",
        "-Xss256k",
        "-XX:+PerfDisableSharedMem",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.net.preferIPv4Stack=true",
        # A small heap: this is a test node.
        "-Xms256M",
        "-Xmx1G",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=300",
        *JVM17_OPTIONS,
        *([f"-javaagent:{jamm[0]}"] if jamm else []),
        f"-Dcassandra.config=file://{d}/cassandra.yaml",
        f"-Dcassandra.storagedir={d}",
        f"-Dcassandra.logdir={d}/logs",
        f"-Dcassandra.triggers_dir={d}/triggers",
        f"-Dlogback.configurationFile=file://{d}/logback.xml",
        "-Dcassandra-foreground=yes",
        # Start fast: one node, nobody to gossip with.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.ring_delay_ms=100",
        "-Dcassandra.superuser_setup_delay_ms=0",
        "-Dchronicle.analytics.disable=true",
        "-cp",
        f"{lib}/*",
        MAIN_CLASS,
    ]


def _java_major(java: str) -> int | None:
    try:
        r = subprocess.run(
            [java, "-XshowSettings:properties", "-version"], capture_output=True, text=True
        )
    except OSError:
        return None
    for line in r.stderr.splitlines():
        if "java.specification.version" in line:
            v = line.split("=", 1)[1].strip()
            return int(v.split(".")[1] if v.startswith("1.") else v)
    return None


def find_java() -> str:
    """A Java that Cassandra 5.0 runs on (17, else 11): $CASSANDRA_JAVA, $JAVA_HOME, PATH, ..."""
    candidates = [os.environ.get("CASSANDRA_JAVA")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    for pattern in ("*-17-*", "*17*", "*-11-*", "*11*"):
        candidates += [str(p) for p in sorted(Path("/usr/lib/jvm").glob(f"{pattern}/bin/java"))]
    seen = []
    for java in filter(None, candidates):
        if java in seen:
            continue
        seen.append(java)
        if _java_major(java) in (11, 17):
            return java
    raise CassandraError(f"Cassandra 5.0 needs Java 17 (or 11); none among {seen}")


# --------------------------------------------------------------------------- CQL probe


def _frame(opcode: int, body: bytes, stream: int = 0) -> bytes:
    return struct.pack(">BBhBi", 4, 0, stream, opcode, len(body)) + body


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    _version, _flags, _stream, opcode, length = struct.unpack(">BBhBi", _read_exact(sock, 9))
    return opcode, _read_exact(sock, length)


def _string(buf: bytes, i: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">H", buf, i)
    return buf[i + 2 : i + 2 + n].decode(), i + 2 + n


def cql_release_version(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> str:
    """``release_version`` from ``system.local`` over the CQL native protocol v4."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        startup = struct.pack(">H", 1)
        for s in ("CQL_VERSION", "3.0.0"):
            startup += struct.pack(">H", len(s)) + s.encode()
        sock.sendall(_frame(0x01, startup))
        opcode, body = _read_frame(sock)
        if opcode != 0x02:  # READY
            raise ConnectionError(f"STARTUP answered opcode {opcode}: {body[:200]!r}")
        q = b"SELECT release_version FROM system.local"
        sock.sendall(_frame(0x07, struct.pack(">i", len(q)) + q + struct.pack(">HB", 1, 0)))
        opcode, body = _read_frame(sock)
        if opcode != 0x08:  # RESULT
            raise ConnectionError(f"QUERY answered opcode {opcode}: {body[:200]!r}")
        kind, flags, ncols = struct.unpack_from(">iii", body, 0)
        if kind != 2 or ncols != 1:  # Rows with our one column
            raise ConnectionError(f"unexpected result kind {kind} with {ncols} columns")
        i = 12
        if flags & 0x0002:  # has_more_pages: a paging state
            (n,) = struct.unpack_from(">i", body, i)
            i += 4 + max(n, 0)
        if flags & 0x0001:  # global table spec
            _, i = _string(body, i)
            _, i = _string(body, i)
        else:
            _, i = _string(body, i)
            _, i = _string(body, i)
        _, i = _string(body, i)  # column name
        i += 2  # type id (varchar)
        (nrows,) = struct.unpack_from(">i", body, i)
        if nrows < 1:
            raise ConnectionError("system.local has no row yet")
        (n,) = struct.unpack_from(">i", body, i + 4)
        return body[i + 8 : i + 8 + n].decode()


# --------------------------------------------------------------------------- process


def _state(run: Path) -> dict | None:
    try:
        return json.loads((run / "cassandra.json").read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int, run: Path) -> bool:
    """The pid is a CassandraDaemon started with this run directory's config."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    config = f"-Dcassandra.config=file://{run.resolve()}/cassandra.yaml".encode()
    return MAIN_CLASS.encode() in cmdline and config in cmdline


def log_tail(run: Path, lines: int = 60) -> str:
    try:
        text = (run / "cassandra.log").read_text(errors="replace")
    except OSError:
        return "(no cassandra.log)"
    return "\n".join(text.splitlines()[-lines:])


def status(run: Path = RUN_DIR) -> dict | None:
    """The running node's state (pid, ports, version) or None."""
    st = _state(run)
    if not st or not _alive(st["pid"], run):
        return None
    try:
        st["release_version"] = cql_release_version(st["native_port"])
    except OSError:
        st["release_version"] = None
    return st


def start(
    run: Path = RUN_DIR,
    native_port: int | None = None,
    storage_port: int | None = None,
    lib: Path = LIB,
    timeout: float = START_TIMEOUT,
    quiet: bool = False,
) -> dict:
    """Start a node in ``run`` (a no-op when one already runs there) and wait for CQL."""
    run = run.resolve()
    lib = lib.resolve()
    run.mkdir(parents=True, exist_ok=True)
    with _locked(run / ".lock"):
        st = _state(run)
        if st and _alive(st["pid"], run):
            wait_ready(run, st, timeout)
            return st
        ensure_deps(lib, quiet=quiet)
        java = find_java()
        if native_port is None:
            native_port = DEFAULT_NATIVE_PORT
        if native_port == 0:
            native_port = free_port()
        elif port_in_use(native_port):
            raise CassandraError(
                f"port {native_port} is already in use: stop what runs there, pass --port N "
                "(0 for a free one), or point KAIROSDB_CASSANDRA_CONTACT_POINTS at it"
            )
        if storage_port is None:
            storage_port = free_port()
        write_config(run, native_port, storage_port)
        (run / "triggers").mkdir(exist_ok=True)
        cmd = java_command(run, lib, java)
        log = (run / "cassandra.log").open("ab")
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=run,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        _CHILDREN[proc.pid] = proc
        st = {
            "pid": proc.pid,
            "native_port": native_port,
            "storage_port": storage_port,
            "dir": str(run),
            "started_at": time.time(),
        }
        (run / "cassandra.pid").write_text(f"{proc.pid}\n")
        (run / "cassandra.json").write_text(json.dumps(st, indent=2) + "\n")
        if not quiet:
            print(
                f"cassandra: pid {proc.pid}, CQL on 127.0.0.1:{native_port}, log {run}/cassandra.log",
                file=sys.stderr,
            )
        try:
            wait_ready(run, st, timeout, proc)
        except BaseException:
            stop(run, quiet=True)
            raise
        return st


def wait_ready(run: Path, st: dict, timeout: float, proc: subprocess.Popen | None = None) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise CassandraError(
                f"Cassandra exited with status {proc.returncode} while starting; "
                f"{run}/cassandra.log ends:\n{log_tail(run)}"
            )
        if proc is None and not _alive(st["pid"], run):
            raise CassandraError(f"Cassandra (pid {st['pid']}) is gone:\n{log_tail(run)}")
        try:
            version = cql_release_version(st["native_port"])
            st["release_version"] = version
            return version
        except (OSError, struct.error) as e:
            last = e
        time.sleep(1)
    raise CassandraError(
        f"Cassandra did not answer CQL on port {st['native_port']} within {timeout:.0f}s "
        f"(last error: {last}); {run}/cassandra.log ends:\n{log_tail(run)}"
    )


def stop(run: Path = RUN_DIR, timeout: float = 60.0, quiet: bool = False) -> bool:
    """SIGTERM the node started in ``run`` (SIGKILL after ``timeout``); False if none ran."""
    run = run.resolve()
    st = _state(run)
    if not st or not _alive(st["pid"], run):
        return False
    pid = st["pid"]
    if not quiet:
        print(f"cassandra: stopping pid {pid}", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid, run):
        _reap(pid)
        time.sleep(0.2)
    if _alive(pid, run):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid, run):
            _reap(pid)
            time.sleep(0.1)
    _reap(pid)
    with contextlib.suppress(OSError):
        (run / "cassandra.pid").unlink()
    return True


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["deps", "start", "stop", "status"])
    p.add_argument("--dir", type=Path, default=RUN_DIR, help="run directory (data, yaml, log)")
    p.add_argument("--port", type=int, default=None, help="CQL port (default 9042, 0: free)")
    p.add_argument("--storage-port", type=int, default=None, help="default: a free port")
    p.add_argument("--lib", type=Path, default=LIB, help="where the jars are cached")
    p.add_argument("--timeout", type=float, default=START_TIMEOUT)
    a = p.parse_args(argv)
    try:
        if a.command == "deps":
            ensure_deps(a.lib)
        elif a.command == "start":
            t0 = time.monotonic()
            st = start(a.dir, a.port, a.storage_port, a.lib, a.timeout)
            print(
                f"cassandra {st.get('release_version')} answers CQL on "
                f"127.0.0.1:{st['native_port']} (pid {st['pid']}, {time.monotonic() - t0:.0f}s)"
            )
        elif a.command == "stop":
            if not stop(a.dir):
                print("cassandra: not running", file=sys.stderr)
        else:
            st = status(a.dir)
            if st is None:
                print("cassandra: not running")
                return 1
            print(json.dumps(st, indent=2))
    except CassandraError as e:
        print(f"cassandra: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
