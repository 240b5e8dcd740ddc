"""``kairos perf``: end-to-end load and query benchmarks against KairosDB-compatible servers.

Modules: ``scenarios`` (named, validated load shapes), ``data`` (deterministic realistic bodies),
``runner`` (sender processes, measurement, drain, read-back), ``report`` (console, JSON, CSV,
PNG), ``compare`` (two servers side by side), ``queries`` (query latency benchmark).
"""

from kairos.perf.scenarios import SCENARIOS, SUITES, Scenario, ScenarioError

__all__ = ["SCENARIOS", "SUITES", "Scenario", "ScenarioError"]
