"""Measure the stack split on a 1,000-model spec in 20 team files, side by side with the
same spec in one file: the largest stack, the stacks a change touches, validate and diff.

Every figure is a subprocess run of ``modelops`` (see benchmarks/run.py, whose helpers it
uses); results are printed as a Markdown section for benchmarks/RESULTS.md.

Example::

    python -m benchmarks.stacks --models 1000 --teams 20 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.generate import model_name, write_project
from benchmarks.run import MODELOPS, median, prebuilt_artifact, repeated, timed

ENVS = ("dev", "staging", "prod")
TARGET_LARGEST = 500
TARGET_RATIO = 1.1


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args], cwd=root,
                   check=True, capture_output=True)


def _model_file(root: Path, model: str) -> Path:
    """The file that declares ``model``: a team file, or the root spec."""
    for path in sorted((root / "teams").glob("*.yaml")) if (root / "teams").is_dir() else []:
        if f"\n  {model}:\n" in path.read_text():
            return path
    return root / "modelops.yaml"


def _change_model(root: Path, model: str) -> None:
    path = _model_file(root, model)
    text = path.read_text()
    head, sep, tail = text.partition(f"\n  {model}:\n")
    changed = tail.replace("instance_type: ml.c5.large", "instance_type: ml.m5.xlarge", 1)
    assert sep and changed != tail, (path, model)
    path.write_text(head + sep + changed)


def _change_channel(root: Path) -> None:
    spec = root / "modelops.yaml"
    text = spec.read_text()
    line = next(l for l in text.splitlines() if l.strip() == "- ml-oncall@example.com")
    changed = text.replace(line + "\n", f"{line}\n{line.replace('ml-oncall', 'ml-second')}\n", 1)
    assert changed != text
    spec.write_text(changed)


def _stacks(root: Path, env: str) -> list[dict]:
    return json.loads(timed([*MODELOPS, "stacks", "--env", env, "--json"], root).stdout)["stacks"]


def _touched(root: Path, change) -> tuple[dict[str, list[str]], float]:
    """Apply ``change`` to a committed project: the stacks the diff says it touches per
    environment, and the diff's time (warm render cache, as a review after an earlier one)."""
    change(root)
    run = timed([*MODELOPS, "diff", "--base", "HEAD", "--format", "json"], root)
    report = json.loads(run.stdout)
    _git(root, "checkout", "-q", "--", ".")
    return {e["env"]: e["stacks"] for e in report["environments"]}, run.seconds


def measure(work: Path, n: int, teams: int, repeat: int) -> dict:
    artifact = prebuilt_artifact(work)
    roots = {"one file": work / "single", f"{teams} team files": work / "teams"}
    for label, root in roots.items():
        shutil.rmtree(root, ignore_errors=True)
        write_project(n, root, artifact, teams=0 if label == "one file" else teams)
        _git(root, "init", "-q")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "base")
    out: dict = {"validate": {}, "diff": {}, "stacks": {}, "touched": {}}
    for label, root in roots.items():
        print(f"{label}: validate --no-policies", flush=True)
        runs = repeated("validate", lambda r=root: timed([*MODELOPS, "validate", "--no-policies"], r), repeat)
        out["validate"][label] = median(runs)
    for label, root in roots.items():
        print(f"{label}: render every environment once (warms the cache a review reuses)", flush=True)
        timed([*MODELOPS, "validate"], root)
        out["stacks"][label] = {env: _stacks(root, env) for env in ENVS}
        print(f"{label}: diff, one model changed", flush=True)
        times = []
        for _ in range(repeat):
            touched, seconds = _touched(root, lambda r: _change_model(r, model_name(1)))
            times.append(seconds)
            print(f"    diff: {seconds:.2f} s", flush=True)
        out["diff"][label] = sorted(times)[len(times) // 2]
        out["touched"][label] = {"one model": touched}
        out["touched"][label]["one channel"], _ = _touched(root, _change_channel)
    return out


def report(data: dict, n: int, teams: int, repeat: int, seconds: float) -> str:
    single, split = "one file", f"{teams} team files"
    load = os.getloadavg()
    lines = [f"## Stacks of bounded size ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"Machine: {platform.system()} {platform.machine()}, nproc {os.cpu_count()}, load average at end "
             f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}", "",
             f"Command: `python -m benchmarks.stacks --models {n} --teams {teams} --repeat {repeat}` "
             f"({seconds / 60:.1f} min). The same generated {n}-model spec written as one file and as a root spec "
             f"including {teams} team files (`benchmarks/generate.py --teams`), measured side by side with the same code.",
             "", "| measure | one file | team files | target | met |", "|---|---|---|---|---|"]
    for env in ENVS:
        a, b = data["stacks"][single][env], data["stacks"][split][env]
        big_a, big_b = max(r["resources"] for r in a), max(r["resources"] for r in b)
        lines.append(f"| {env}: stacks (shared + groups), largest stack's resources | {len(a)}, {big_a} | {len(b)}, {big_b} "
                     f"| <= {TARGET_LARGEST} | {'yes' if max(big_a, big_b) <= TARGET_LARGEST else 'NO'} |")
    for change, rule in (("one model", "1 group stack"), ("one channel", "shared stack only")):
        a, b = data["touched"][single][change], data["touched"][split][change]
        def show(t):
            return "; ".join(f"{env}: {', '.join(s) or '-'}" for env, s in sorted(t.items()))
        if change == "one model":
            ok = all(len(s) == 1 and "." in s[0] for t in (a, b) for s in t.values())
        else:
            ok = all(s == [env] for t in (a, b) for env, s in t.items())
        lines.append(f"| stacks a {change} change touches | {show(a)} | {show(b)} | {rule} | {'yes' if ok else 'NO'} |")
    for step in ("validate", "diff"):
        a, b = data[step][single], data[step][split]
        label = {"validate": "validate --no-policies (3 envs), median s",
                 "diff": "diff, one model changed, 3 envs, warm cache, median s"}[step]
        lines.append(f"| {label} | {a:.2f} | {b:.2f} ({b / a:.2f}x) | <= {TARGET_RATIO}x | {'yes' if b / a <= TARGET_RATIO else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="modelops-bench-stacks-"))
    work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().timestamp()
    data = measure(work, args.models, args.teams, args.repeat)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(report(data, args.models, args.teams, args.repeat, dt.datetime.now().timestamp() - started))


if __name__ == "__main__":
    main()
