"""The Kubernetes manifests agree with the code: ports, probes, env names, shutdown timing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kairos import cli, config
from kairos.app.health import bp as health_bp

K8S = Path(__file__).resolve().parents[2] / "k8s"
KNOWN_ENV = set(config.ENV) | {
    "KAIROSDB_BIND_ADDRESS",
    "KAIROSDB_QUERY_BIND_ADDRESS",
}


def _docs() -> list[dict]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == kind}


def _kairos_workloads() -> list[dict]:
    return [
        d
        for d in _docs()
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["spec"]["template"]["spec"]["containers"][0].get("command", [""])[0] == "kairos"
    ]


def _env(container: dict) -> dict[str, str]:
    env = {}
    for ref in container.get("envFrom", []):
        env.update(_by_kind("ConfigMap")[ref["configMapRef"]["name"]]["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def test_manifests_parse_and_name_the_services() -> None:
    names = {d["metadata"]["name"] for d in _kairos_workloads()}
    assert {"kairos-ingest", "kairos-query"} <= names
    assert "cassandra" in _by_kind("StatefulSet")


@pytest.mark.parametrize("workload", _kairos_workloads(), ids=lambda d: d["metadata"]["name"])
def test_kairos_containers_match_the_configuration_code(workload: dict) -> None:
    pod = workload["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    command = c["command"][1]
    assert command in cli._SERVICES
    env = _env(c)
    unknown = {k for k in env if k.startswith("KAIROSDB_")} - KNOWN_ENV
    assert not unknown, f"{workload['metadata']['name']}: unknown variables {unknown}"
    # Every value parses and validates as the service would load it.
    _, server_type, address, env_name = cli._SERVICES[command]
    load_env = dict(env)
    if env_name in env:
        load_env["KAIROSDB_BIND_ADDRESS"] = env[env_name]
    host, port = address.rsplit(":", 1)
    defaults = {"host": host, "port": int(port), "server_type": server_type}
    cfg = config.load(env=load_env, defaults=defaults)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == cfg.port
    if "INGEST" in cfg.api_groups:  # the line protocols listen where ingest is served
        assert ports.get("telnet") == cfg.telnet_port
        assert ports.get("graphite") == cfg.graphite_port
    # Probes hit real routes on the HTTP port.
    routes = {r.uri for r in health_bp._future_routes}
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] in ("http", cfg.port)
        assert get["path"] in routes
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # SIGTERM: readiness 503 for the LB delay, then drain; the pod must be given longer.
    grace = pod.get("terminationGracePeriodSeconds", 30)
    assert grace > cfg.health_lb_delay_seconds + 15, (grace, cfg.health_lb_delay_seconds)
    assert c["lifecycle"]["preStop"] if workload["kind"] == "Deployment" else True
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    assert cfg.data_dir in mounts


def test_services_target_container_ports() -> None:
    services = _by_kind("Service")
    for w in [*_kairos_workloads(), _by_kind("StatefulSet")["cassandra"]]:
        labels = w["spec"]["template"]["metadata"]["labels"]
        ports = {p["name"] for p in w["spec"]["template"]["spec"]["containers"][0]["ports"]}
        svc = [
            s
            for s in services.values()
            if s["spec"]["selector"].items() <= labels.items() and s["spec"]["selector"]
        ]
        assert svc, f"no Service selects {w['metadata']['name']}"
        for s in svc:
            for p in s["spec"]["ports"]:
                assert p.get("targetPort", p["name"]) in ports | {p["port"]}


def test_cassandra_contact_points_name_the_statefulset() -> None:
    env = _by_kind("ConfigMap")["kairos-config"]["data"]
    cfg = config.load(env=env)
    assert cfg.datastore == "cassandra"
    sts = _by_kind("StatefulSet")["cassandra"]
    for host, port in config.cassandra_contact_points(cfg):
        pod, _, svc = host.partition(".")
        assert svc == sts["spec"]["serviceName"]
        assert int(pod.rsplit("-", 1)[1]) < sts["spec"]["replicas"]
        assert port == 9042
