"""Semantic rules of a model: training columns and parameters, serving options.

What the schema cannot say about one model: ``train.target`` and ``train.features`` name
columns of the dataset's CSV header, the estimator's parameters exist and are within their
size limits, the instance type is one SageMaker serves on, autoscaling bounds hold,
serverless is not combined with what it cannot do, and a rollout (its variants, and how
a deploy shifts traffic) is one AWS accepts.

Example::

    list(serving_problems({"instance_type": "ml.m5.huge"}, ("models", "m", "serving"), where))
    # [Problem('E-INSTANCE-TYPE', ...)]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from modelops.errors import Problem, excerpt
from modelops.ml import estimators
from modelops.spec import resolved, units
from modelops.spec.problems import Locator, at, choices, clash, dotted, is_true, mapping, suggest, whole

__all__ = ["rollout_mode_problems", "rollout_problems", "serving_instance_types", "serving_problems", "train_column_problems", "train_problems"]


@functools.cache
def serving_instance_types() -> tuple[str, ...]:
    """The instance types of SageMaker real-time endpoints, in the API's order
    (``modelops/data/serving_instance_types.json``, with its source)."""
    text = resources.files("modelops.data").joinpath("serving_instance_types.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["instance_types"])


_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")


def train_column_problems(train: dict[str, Any], base: tuple[Any, ...], data: tuple[str, tuple[str, ...]], where: Locator) -> Iterator[Problem]:
    """``train.target`` and ``train.features`` name columns of the dataset's CSV header
    (else ``build`` fails later, without a position)."""
    source, header = data
    if not header:
        return
    columns = set(header)
    named = [((*base, "target"), train.get("target"))]
    features = train.get("features")
    if isinstance(features, list):
        named += [((*base, "features", index), feature) for index, feature in enumerate(features)]
    for path, column in named:
        if not isinstance(column, str) or not column or column in columns:
            continue
        close = suggest(column, header)
        fix = f"did you mean {excerpt(close)}?" if close else f"columns: {choices([excerpt(c) for c in header])}"
        yield at("E-TRAIN-COLUMN", where.value(path), path, f"column {excerpt(column)} is not in the header of {excerpt(source)}", fix)


def train_problems(train: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    params = mapping(train.get("params"))
    for name, message in estimators.size_problems(params, mapping(train.get("limits"))):
        path = (*base, "params", name)
        text, _, fix = message.partition("; ")
        yield at("E-SIZE-LIMIT", where.value(path), path, text, fix)
    path_text = train.get("estimator")
    if not isinstance(path_text, str) or not estimators.ESTIMATOR_PATTERN.match(path_text):
        return  # the schema's pattern reports it
    try:
        facts = estimators.describe(path_text)
    except ValueError as exc:
        text, _, fix = str(exc).partition("; ")
        yield at("E-ESTIMATOR", where.value((*base, "estimator")), (*base, "estimator"), text, fix)
        return
    if facts.open_keywords:
        return
    cls_name = path_text.rsplit(".", 1)[-1]
    for name in params:
        if name not in facts.parameters:
            path = (*base, "params", name)
            close = suggest(name, facts.parameters)
            fix = f"did you mean '{close}'?" if close else f"its parameters: {choices(sorted(facts.parameters), 12)}"
            yield at("E-PARAM", where.key(path), path, f"not a parameter of {cls_name}", fix)


def serving_problems(serving: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    instance_type = serving.get("instance_type")
    # the schema's pattern reports a malformed one; a well-formed unknown one would deploy
    # nothing AWS accepts, and cost nothing in the plan
    if isinstance(instance_type, str) and _INSTANCE_TYPE.match(instance_type) and instance_type not in serving_instance_types():
        close = suggest(instance_type, serving_instance_types())
        family = instance_type.split(".")[1]
        sizes = [t.split(".")[2] for t in serving_instance_types() if t.split(".")[1] == family]
        hints = [f"did you mean '{close}'?"] if close else []
        if sizes:
            hints.append(f"ml.{family} sizes: {', '.join(sizes)}")
        fix = " ".join(hints) or "use a SageMaker real-time inference instance type, e.g. 'ml.m5.large'"
        path = (*base, "instance_type")
        yield at("E-INSTANCE-TYPE", where.value(path), path, f"'{instance_type}' is not an instance type of SageMaker real-time inference", fix)
    autoscaling = serving.get("autoscaling")
    count = serving.get("instance_count")
    if isinstance(autoscaling, dict):
        low, high = autoscaling.get("min"), autoscaling.get("max")
        if whole(low) and whole(high):
            if low > high:
                yield at("E-AUTOSCALING", where.value((*base, "autoscaling", "min")), (*base, "autoscaling"), f"min ({low}) is greater than max ({high})", "make min ≤ max")
            elif whole(count) and not low <= count <= high:
                yield at("E-AUTOSCALING", where.value((*base, "instance_count")), (*base, "instance_count"), f"{count} is outside autoscaling min..max ({low}..{high})", f"set instance_count between {low} and {high}")
    if "serverless" in serving:
        for key in ("instance_type", "instance_count", "autoscaling", "canary", "shadow"):
            if key in serving:
                what = "a canary variant" if key == "canary" else "a shadow variant" if key == "shadow" else f"`{key}`"
                yield clash("E-SERVERLESS", where, (*base, "serverless"), (*base, key), f"{what} cannot be used with serverless", f"remove `{key}`, or remove `serverless`")
        capture = serving.get("data_capture")
        if isinstance(capture, dict) and is_true(capture.get("enabled")):
            path = (*base, "data_capture", "enabled")
            yield clash("E-SERVERLESS", where, (*base, "serverless"), path, "serverless endpoints cannot capture data", "remove `data_capture`, or serve on instances", value=True)



def rollout_problems(model: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    """A rollout SageMaker accepts: a shadow only beside exactly one production variant (so never
    beside a canary), and a canary or shadow of another version than the primary's (the same
    version makes two SageMaker models with one name, and AWS refuses the second)."""
    serving = mapping(model.get("serving"))
    if "serverless" in serving:  # reported by serving_problems
        return
    canary, shadow = serving.get("canary"), serving.get("shadow")
    if isinstance(canary, dict) and isinstance(shadow, dict):
        yield clash("E-ROLLOUT", where, (*base, "serving", "canary"), (*base, "serving", "shadow"),
                    "a shadow variant cannot run beside a canary: SageMaker allows shadow variants only with exactly "
                    "one production variant", "remove `shadow` (or `canary`): shadow-test a version, then canary it")
    primary = model.get("version")
    for key, variant in (("canary", canary), ("shadow", shadow)):
        version = mapping(variant).get("version")
        if not (isinstance(primary, str) and version == primary):
            continue
        pin, other = (*base, "version"), (*base, "serving", key, "version")
        # reported where the later layer set it (an overlay's pin over the base's canary: the pin)
        layers = where.layer(pin), where.layer(other)
        here, there = (pin, other) if None not in layers and layers[0] < layers[1] else (other, pin)
        spot, elsewhere = where.value(here), where.value(there)
        seen = f" (`{dotted(there)}` at {elsewhere[0]}:{elsewhere[1]}:{elsewhere[2]})" if elsewhere[0] != spot[0] else ""
        yield at("E-ROLLOUT", spot, here,
                 f"the {key} serves the primary's version {primary}{seen}: two SageMaker models with one name, "
                 "which AWS refuses",
                 f"pin another version here, or move `{key}` out of {elsewhere[0]} into the overlays that test a version"
                 if seen and here == pin else f"pin the {key} to the version under test, or remove `{key}`")


def rollout_mode_problems(serving: dict[str, Any], base: tuple[Any, ...], where: Locator) -> Iterator[Problem]:
    """``serving.rollout`` is a blue/green traffic shift SageMaker performs as written.

    ``canary`` and ``linear`` move traffic by whole instances of a real-time endpoint: not
    serverless (SageMaker's deployment guardrails apply to real-time and asynchronous
    endpoints only), not ml.inf1 (it silently shifts all at once there, without baking),
    and at least 2 instances (a first shift of at most half the fleet). A linear step is
    10-50% of the fleet; one wait is at most 1h; the whole update must fit SageMaker's 8h
    deadline with time to provision. ``base`` is the serving's path."""
    rollout = serving.get("rollout")
    if not isinstance(rollout, dict):
        return
    ro = (*base, "rollout")
    mode = rollout.get("mode", "all_at_once")
    percent = rollout.get("percent")
    wait = rollout.get("wait")
    if "percent" in rollout and mode == "all_at_once":
        yield at("E-ROLLOUT", where.key((*ro, "percent")), (*ro, "percent"),
                 "`percent` applies only to a canary or linear rollout; all_at_once shifts every request at once",
                 "remove `percent`, or set `mode: canary` (or `linear`)")
    wait_seconds = None
    if isinstance(wait, str):
        try:
            wait_seconds = units.parse_duration(wait)
        except ValueError:
            wait_seconds = None  # the schema's pattern reports it
    if wait_seconds is not None:
        if not float(wait_seconds).is_integer():
            yield at("E-ROLLOUT", where.value((*ro, "wait")), (*ro, "wait"),
                     f"{excerpt(wait)} is not a whole number of seconds; SageMaker waits in seconds", "write it in s, m or h, e.g. '10m'")
        elif wait_seconds > resolved.ROLLOUT_MAX_WAIT_SECONDS:
            yield at("E-ROLLOUT", where.value((*ro, "wait")), (*ro, "wait"),
                     f"{excerpt(wait)} is longer than SageMaker waits between shifts (at most 1h)", "set `wait` to 1h or less")
    if mode not in ("canary", "linear"):
        return
    mode_at = where.value((*ro, "mode"))
    if "serverless" in serving:
        yield clash("E-SERVERLESS", where, (*base, "serverless"), (*ro, "mode"),
                    f"a {mode} rollout needs an endpoint on instances: SageMaker shifts a serverless endpoint's "
                    "traffic all at once", "set `mode: all_at_once`, or serve on instances (remove `serverless`)",
                    value=True)
        return
    if mode == "linear" and whole(percent) and percent < 10:
        yield at("E-ROLLOUT", where.value((*ro, "percent")), (*ro, "percent"),
                 f"a linear step of {percent}% is below SageMaker's 10-50% of the fleet",
                 "set `percent` between 10 and 50, or use `mode: canary` for a small first share")
    instance_type = serving.get("instance_type")
    if isinstance(instance_type, str) and instance_type.startswith("ml.inf1."):
        yield at("E-ROLLOUT", mode_at, (*ro, "mode"),
                 f"SageMaker does not shift traffic in steps on {instance_type} (Inferentia 1): it would deploy all "
                 "at once, without baking", "set `mode: all_at_once`, or serve on another instance type")
    autoscaling = mapping(serving.get("autoscaling"))
    count = serving.get("instance_count", autoscaling.get("min", 1))
    if whole(count) and count < 2:
        message = (f"a {mode} rollout first moves at most half of the new fleet, and SageMaker moves whole instances: "
                   f"{count} instance cannot be split")
        count_path = (*base, "instance_count")
        layers = where.layer(count_path), where.layer((*ro, "mode"))
        if "instance_count" in serving and None not in layers and layers[0] < layers[1]:
            # an overlay's count under the base's rollout (layer 0 is the overlay): reported at the count
            yield at("E-ROLLOUT", where.value(count_path), count_path,
                     f"{message} (`rollout.mode: {mode}` at {mode_at[0]}:{mode_at[1]}:{mode_at[2]})",
                     "keep 2 or more instances here, or set `rollout: {mode: all_at_once}` here")
        else:
            yield at("E-ROLLOUT", mode_at, (*ro, "mode"), message,
                     "serve on 2 or more instances (`instance_count: 2`), or set `mode: all_at_once`")
    if wait_seconds is not None and float(wait_seconds).is_integer() and wait_seconds <= resolved.ROLLOUT_MAX_WAIT_SECONDS:
        plan = resolved.Rollout(mode=mode, percent=percent if whole(percent) else resolved.ROLLOUT_PERCENT[mode],
                                wait_seconds=int(wait_seconds))
        limit = resolved.ROLLOUT_MAX_EXECUTION_SECONDS - resolved.ROLLOUT_PROVISIONING_SECONDS
        if plan.total_seconds > limit:
            yield at("E-ROLLOUT", where.value((*ro, "wait")), (*ro, "wait"),
                     f"{plan.shifts} shifts of {excerpt(wait)} and the 10m bake take {_hours(plan.total_seconds)}, "
                     f"more than the {_hours(limit)} SageMaker's 8h deadline leaves after provisioning",
                     "shorten `wait`, or raise `percent` for fewer steps")


def _hours(seconds: int) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
