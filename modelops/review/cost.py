"""Monthly cost estimate of a rendered resource graph, from a price file that names its source.

Prices live in ``modelops/data/prices.json`` (AWS public list prices, with the date they are
stated for); which bucket a type lands in is its ``cost`` in the type table
(:mod:`modelops.graph.resource_types`). Every resource of the graph lands in exactly one:

* a **line** with a fixed monthly amount (SageMaker instances: hourly price × 730 × count;
  CloudWatch alarms per metric; dashboards; KMS keys),
* **usage-based** (serverless inference, SNS, S3, Glue, autoscaling headroom): named, never
  added to the total, because the amount depends on traffic,
* **free** (IAM roles, SageMaker model objects, endpoints: billed through their
  configuration's instances, …): counted, not priced,
* **unpriced**: a type or instance type the price file does not know. Named in the report,
  never silently zero.

Example::

    report = estimate(graph, "eu-west-1")
    report.total_monthly            # 197.9
    report.to_dict()["unpriced"]    # []
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

from modelops.graph.resource_types import DASHBOARD, ENDPOINT_CONFIG, KMS_KEY, METRIC_ALARM, SCALING_TARGET, type_facts
from modelops.graph.runtime import Registration

@dataclass(frozen=True)
class CostLine:
    """One priced resource: ``monthly`` USD = ``unit_price`` × ``quantity`` (× hours when hourly)."""

    urn: str
    type: str
    name: str
    description: str
    unit_price: float
    quantity: float
    monthly: float
    approximate: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "description": self.description,
            "unit_price": self.unit_price,
            "quantity": self.quantity,
            "monthly": round(self.monthly, 2),
            "approximate": self.approximate,
        }


@dataclass(frozen=True)
class UsageItem:
    """A resource whose cost depends on traffic or data volume: named, not added up."""

    urn: str
    type: str
    name: str
    depends_on: str

    def to_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "depends_on": self.depends_on}


@dataclass(frozen=True)
class Unpriced:
    """A resource the price file cannot price (unknown type, instance type or region)."""

    urn: str
    type: str
    name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "reason": self.reason}


@dataclass
class CostReport:
    """Monthly estimate of one graph in one region."""

    region: str
    currency: str
    source: str
    as_of: str
    lines: list[CostLine] = field(default_factory=list)
    usage_based: list[UsageItem] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    free: int = 0

    @property
    def total_monthly(self) -> float:
        """Sum of the fixed monthly lines (usage-based and unpriced resources excluded)."""
        return round(sum(line.monthly for line in self.lines), 2)

    @property
    def approximate(self) -> bool:
        return any(line.approximate for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "currency": self.currency,
            "total_monthly": self.total_monthly,
            "approximate": self.approximate,
            "lines": [line.to_dict() for line in self.lines],
            "usage_based": [item.to_dict() for item in self.usage_based],
            "unpriced": [item.to_dict() for item in self.unpriced],
            "free_resources": self.free,
            "source": self.source,
            "as_of": self.as_of,
        }


@lru_cache(maxsize=1)
def prices() -> dict[str, Any]:
    """The price file (``modelops/data/prices.json``), parsed once."""
    text = resources.files("modelops.data").joinpath("prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def instance_hourly(instance_type: str, region: str) -> tuple[float, bool] | None:
    """(USD per hour, approximate?) of a SageMaker real-time instance, or None when unknown."""
    table = prices()["sagemaker_realtime_hourly"].get(region)
    if table is None or instance_type not in table["prices"]:
        return None
    approximate = not table.get("exact", False) or instance_type in table.get("approximate_types", [])
    return float(table["prices"][instance_type]), approximate


def _variants(inputs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("production", v) for v in inputs.get("productionVariants") or []]
    found += [("shadow", v) for v in inputs.get("shadowProductionVariants") or []]
    return found


def _alarm_metrics(inputs: dict[str, Any]) -> tuple[int, bool]:
    """(number of metrics the alarm is billed for, high resolution?)."""
    queries = inputs.get("metricQueries") or []
    if queries:
        count = sum(1 for q in queries if q.get("metric"))
        periods = [int(q["metric"].get("period") or 60) for q in queries if q.get("metric")]
        return max(count, 1), any(p < 60 for p in periods)
    period = int(inputs.get("period") or 60)
    return 1, period < 60


def estimate(registrations: Iterable[Registration], region: str) -> CostReport:
    """Price every custom resource of a rendered graph for one month in ``region``.

    Example::

        report = estimate(render(env), env.region)
        print(report.total_monthly, [u.name for u in report.unpriced])
    """
    data = prices()
    hours = float(data["hours_per_month"])
    cw = data["cloudwatch"]
    report = CostReport(region=region, currency=data["currency"], source=data["source"], as_of=data["as_of"])
    for reg in registrations:
        if not reg.custom:
            continue
        if reg.type == ENDPOINT_CONFIG:
            _price_endpoint_config(reg, region, hours, report)
        elif reg.type == METRIC_ALARM:
            count, high_res = _alarm_metrics(reg.inputs)
            unit = cw["alarm_high_resolution_per_metric_month"] if high_res else cw["alarm_standard_per_metric_month"]
            kind = "high-resolution" if high_res else "standard"
            report.lines.append(
                CostLine(reg.urn, reg.type, reg.name, f"CloudWatch alarm, {count} {kind} metric(s)",
                         unit, count, unit * count, not cw.get("exact", False) or region != "us-east-1")
            )
        elif reg.type == DASHBOARD:
            unit = cw["dashboard_per_month"]
            report.lines.append(CostLine(reg.urn, reg.type, reg.name, "CloudWatch dashboard", unit, 1, unit,
                                         not cw.get("exact", False)))
        elif reg.type == KMS_KEY:
            unit = data["kms"]["customer_managed_key_per_month"]
            report.lines.append(CostLine(reg.urn, reg.type, reg.name, "KMS customer-managed key", unit, 1, unit,
                                         not data["kms"].get("exact", False)))
        elif reg.type == SCALING_TARGET:
            low, high = reg.inputs.get("minCapacity"), reg.inputs.get("maxCapacity")
            report.usage_based.append(
                UsageItem(reg.urn, reg.type, reg.name,
                          f"autoscaling between {low} and {high} instances: instances above the configured count are billed per hour while they run")
            )
        elif (facts := type_facts(reg.type)) is not None and facts.usage is not None:
            report.usage_based.append(UsageItem(reg.urn, reg.type, reg.name, _usage_unit(facts.usage)))
        elif facts is not None and facts.cost == "free":
            report.free += 1
        else:  # a type the table lacks, or one it says is priced that no branch above prices
            report.unpriced.append(Unpriced(reg.urn, reg.type, reg.name, f"no price for resource type {reg.type}"))
    return report


def _usage_unit(key: str) -> str:
    return str(prices()[key]["unit"])


def _price_endpoint_config(reg: Registration, region: str, hours: float, report: CostReport) -> None:
    variants = _variants(reg.inputs)
    if not variants:
        report.unpriced.append(Unpriced(reg.urn, reg.type, reg.name, "endpoint configuration without variants"))
        return
    for kind, variant in variants:
        vname = variant.get("variantName") or kind
        if variant.get("serverlessConfig"):
            mem = variant["serverlessConfig"].get("memorySizeInMb")
            report.usage_based.append(
                UsageItem(reg.urn, reg.type, f"{reg.name}/{vname}",
                          f"SageMaker Serverless Inference ({mem} MB): {prices()['sagemaker_serverless']['unit']}")
            )
            continue
        instance_type = variant.get("instanceType") or ""
        count = int(variant.get("initialInstanceCount") or 0)
        price = instance_hourly(instance_type, region)
        if price is None:
            report.unpriced.append(
                Unpriced(reg.urn, reg.type, f"{reg.name}/{vname}",
                         f"no {region} price for SageMaker instance type {instance_type or '(none)'}")
            )
            continue
        hourly, approximate = price
        report.lines.append(
            CostLine(reg.urn, reg.type, f"{reg.name}/{vname}",
                     f"SageMaker {kind} variant: {count} × {instance_type} × {hours:g} h",
                     hourly, count, hourly * hours * count, approximate)
        )
