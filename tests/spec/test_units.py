"""Durations, percentages and thresholds in the unit of their metric."""

from __future__ import annotations

import pytest

from modelops.spec.resolved import Threshold
from modelops.spec.units import format_duration, parse_duration, parse_gate, parse_threshold


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("1s", 1.0), ("5m", 300.0), ("1.5h", 5400.0), ("48h", 172800.0), ("1d", 86400.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5", "5 minutes", "m5", "", "-5m", "5M", 5, None, True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_round_trips():
    for seconds in (0.25, 1, 60, 300, 3600, 5400, 86400):
        assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(300) == "5m"


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        ("latency_p99", "250ms", Threshold(0.25, "seconds", "250ms")),
        ("freshness", "48h", Threshold(172800.0, "seconds", "48h")),
        ("error_rate", "2%", Threshold(0.02, "ratio", "2%")),
        ("cpu_utilization", "250%", Threshold(2.5, "ratio", "250%")),
        ("memory_utilization", "80%", Threshold(0.8, "ratio", "80%")),
        ("invocations", 1, Threshold(1.0, "number", "1")),
        ("data_drift", 0.2, Threshold(0.2, "number", "0.2")),
    ],
)
def test_thresholds_in_their_metric_unit(metric, value, expected):
    assert parse_threshold(metric, value) == expected


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("latency_p99", 250, "takes a duration, not a bare number"),
        ("latency_p99", "0ms", "must be longer than 0"),
        ("error_rate", 2, "takes a percentage"),
        ("error_rate", "2", "is not a percentage"),
        ("error_rate", "101%", "above 100%"),
        ("invocations", "10", "takes a plain number"),
        ("invocations", True, "takes a plain number"),
        ("data_drift", -1, "finite number ≥ 0"),
        ("data_drift", float("inf"), "finite number ≥ 0"),
    ],
)
def test_bad_thresholds(metric, value, message):
    with pytest.raises(ValueError, match=message):
        parse_threshold(metric, value)


@pytest.mark.parametrize(
    ("value", "fix"),
    [(0.01, "write '1%' (0.01 as a ratio)"), ("0.01", "write '1%' (0.01 as a ratio)"), (0.8, "write '80%' (0.8 as a ratio)"),
     (0.07, "write '7%' (0.07 as a ratio)"), (2, "write '2%'"), ("80", "write '80%'")],
)
def test_a_bare_number_for_a_percentage_is_fixed_to_the_percentage_it_means(value, fix):
    # a number under 1 is a ratio (the 1% error rate is 0.01), not 0.01%
    with pytest.raises(ValueError) as raised:
        parse_threshold("error_rate", value)
    assert str(raised.value).partition("; ")[2] == fix


def test_gates():
    assert parse_gate(">= 0.85") == (">=", 0.85)
    assert parse_gate("<-1") == ("<", -1.0)
    with pytest.raises(ValueError):
        parse_gate("0.85")
