"""The alert rules and the dashboard: every expression parses, names only metrics the
exporter exports, and (where promtool is installed) each rule passes its promtool test."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from worker.metrics import catalogue

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "marketscan-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "marketscan-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "marketscan-dashboard.json"
MONITORING_PAGE = Path(__file__).parents[2] / "docs" / "monitoring.md"
# What Prometheus itself records about each scrape.
PROMETHEUS_OWN = frozenset({"up"})


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panel_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def metric_names(expression: str) -> set[str]:
    """Every metric name a PromQL expression selects."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for argument in node.args:
                walk(argument)
        elif isinstance(
            node,
            promql_parser.AggregateExpr
            | promql_parser.ParenExpr
            | promql_parser.UnaryExpr
            | promql_parser.SubqueryExpr,
        ):
            walk(node.expr)

    walk(promql_parser.parse(expression))
    return names


def test_the_name_walk_finds_every_selector() -> None:
    # The check below is only as good as this walk: it must see through every node kind.
    expression = "sum by (a) (rate(x_total[5m])) / on() (y or absent(z)) - -max_over_time(w[5m:1m])"
    assert metric_names(expression) == {"x_total", "y", "z", "w"}


@pytest.mark.parametrize("expression", [rule["expr"] for rule in _rules()] + _panel_queries())
def test_every_expression_parses_and_names_only_exported_metrics(expression: str) -> None:
    names = metric_names(expression)
    assert names, f"{expression!r} selects no metric"
    unknown = names - catalogue.exported_series_names() - PROMETHEUS_OWN
    assert not unknown, f"{expression!r} names metrics the exporter does not export: {unknown}"


def test_a_misspelt_metric_is_caught() -> None:
    # Given an expression naming a metric nobody exports, Then the check above refuses it.
    assert metric_names("marketscan_pages_comitted_total > 0") - catalogue.exported_series_names()


def test_every_alert_has_a_promtool_test_and_a_row_in_the_monitoring_page() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert tested == alerts
    lines = MONITORING_PAGE.read_text().splitlines()
    rowless = sorted(a for a in alerts if not any(r.startswith(f"| `{a}` |") for r in lines))
    assert rowless == [], "docs/monitoring.md's Alerts table: what to do when each fires"


def test_the_dashboard_shows_what_operators_ask() -> None:
    queries = " ".join(_panel_queries())
    for metric in (
        "marketscan_scans", "marketscan_pages_committed_total", "marketscan_items_processed_total",
        "marketscan_recoveries_total", "marketscan_market_requests_total",
        "marketscan_page_seconds_bucket", "marketscan_queue_depth",
        "marketscan_oldest_queued_page_age_seconds", "marketscan_cleanup_rows_deleted_total",
        "marketscan_cleanup_last_success_timestamp_seconds",
    ):  # fmt: skip
        assert metric in queries, metric
    assert 'code="429"' in queries


def _promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return binary


def test_promtool_checks_the_rule_file() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_every_rule_pass() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
