"""The ModelOps benchmark: whole-process timings of the real CLI against the floor of each step.

Every figure is a subprocess run of ``modelops`` (or of a floor program with the same
interpreter), measured side by side in the same run; the table shows medians of
``--repeat`` runs and the ratio ours/floor, because machines are noisy and ratios travel.

Steps (see benchmarks/README.md for what each floor is):

* validate, spec checks only (``--no-policies``)  vs  PyYAML's CSafeLoader on the same files
* validate --no-policies of a spec whose every dataset reads its own CSV (10,000 rows),
  first run and files unchanged  vs  the same CSafeLoader parse
* validate with policies, cold and warm render cache (reported, no floor)
* plan --json of one environment, render cache cold  vs  a bare Pulumi program of the same
  resources (and, as references, the same program given the plan's inputs, and the plan
  again from the cache it left), interleaved, --repeat rounds
* diff, one model changed, 3 environments: per-entity cache warm  vs  full re-render, and
  the first diff on a fresh runner (another checkout path, main's cache restored), <= 10 s
* up of the dev environment to the TLS emulator  vs  the same AWS calls by boto3 (and, as a
  reference, up after a plan, its policy check read from the render cache)
* peak memory (ru_maxrss) of the largest plan, and of a 10,000-resource render against its < 1 GiB target

Example::

    python -m benchmarks.run                       # the default: sizes 10,100,1000
    python -m benchmarks.run --sizes 10,100 --repeat 1 --up-size 10 --out /tmp/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.generate import DATA_ROWS, model_name, write_project

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
MODELOPS = [PY, "-m", "modelops"]
#: a step whose single run takes longer than this is run once, whatever --repeat says
LONG_RUN = 60.0
ENVS = ("dev", "staging", "prod")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-west-1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    env.pop("MODELOPS_RENDER_CACHE", None)
    env.pop("MODELOPS_RENDER_JOBS", None)  # the default: a large render uses every CPU available
    env.pop("MODELOPS_RECORD_AWS_CALLS", None)
    return env


@dataclass
class Run:
    seconds: float
    #: the largest ru_maxrss of the process and the processes it waited for (os.wait4)
    maxrss_kb: int
    stdout: str
    #: CPU seconds (user + system) of the process and the processes it waited for
    cpu_seconds: float = 0.0
    #: the largest RSS summed over the process and its descendants, sampled every
    #: SAMPLE_SECONDS (a render in several processes holds all of theirs at once)
    tree_rss_kb: int = 0


#: how often the memory of a timed process tree is sampled
SAMPLE_SECONDS = 0.05


def _tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and its descendants, summed (pages shared after a fork counted in each)."""
    total, todo, page_kb = 0, [pid], os.sysconf("SC_PAGE_SIZE") // 1024
    while todo:
        current = todo.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * page_kb
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
    return total


class _TreeMemory(threading.Thread):
    """Samples the summed RSS of a process tree until stopped; ``peak_kb`` the largest sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        if not Path("/proc/self/statm").exists():  # not Linux: ru_maxrss only
            return
        while not self.done.wait(SAMPLE_SECONDS):
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))


def timed(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None, stdout_file: Path | None = None) -> Run:
    """Run ``cmd``: wall seconds, CPU seconds and peak memory (the largest single process,
    and the process tree's sampled sum)."""
    env = _env()
    env.update(extra_env or {})
    with tempfile.TemporaryFile("w+") as err, (open(stdout_file, "w+") if stdout_file else tempfile.TemporaryFile("w+")) as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        sampler = _TreeMemory(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            sampler.done.set()
            sampler.join()
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        stdout = "" if stdout_file else out.read()
        if code != 0:
            raise RuntimeError(f"{shlex.join(cmd)} (in {cwd}) exited {code}: {err.read()[-2000:]}")
    return Run(seconds, usage.ru_maxrss, stdout, usage.ru_utime + usage.ru_stime, max(sampler.peak_kb, usage.ru_maxrss))


def repeated(label: str, cmd_fn, repeat: int, prepare=None) -> list[Run]:
    runs: list[Run] = []
    for i in range(repeat):
        if prepare is not None:
            prepare()
        runs.append(cmd_fn())
        print(f"    {label}: {runs[-1].seconds:.2f} s", flush=True)
        if runs[-1].seconds > LONG_RUN and i == 0:
            break
    return runs


def median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


@dataclass
class Row:
    step: str
    size: str
    ours: float
    floor: float | None
    target: str
    runs: int
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.floor else self.ours / self.floor

    def met(self) -> str:
        r = self.ratio
        if r is None or not self.target:
            return ""
        kind, value = self.target.split(" ")
        if kind == "<=":
            return "yes" if r <= float(value) else "NO"
        if kind == "faster>=":  # floor/ours, the speed-up
            return "yes" if 1 / r >= float(value) else "NO"
        if kind == "seconds<=":  # a time of ours, whatever the floor
            return "yes" if self.ours <= float(value) else "NO"
        return ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    scaling: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    memory: str = ""
    #: custom resources per model of the largest plan (sizes the 10,000-resource render)
    resources_per_model: float = 0.0


# ------------------------------------------------------------------------------------ setup


def prebuilt_artifact(work: Path) -> Path:
    """One model package, built once by ``modelops build`` on the root example (cached there)."""
    spec = REPO / "modelops.yaml"
    code = (
        "import sys; from pathlib import Path; from modelops.spec.envs import load_environment;"
        "from modelops.ml.artifacts import resolve_artifact;"
        f"env = load_environment({str(spec)!r}, 'dev'); m = next(iter(env.models.values()));"
        "print(resolve_artifact(env, m, build=True).path)"
    )
    run = timed([PY, "-c", code], REPO)
    path = Path(run.stdout.strip().splitlines()[-1])
    target = work / "model.tar.gz"
    shutil.copyfile(path, target)
    return target


def compile_bytecode() -> None:
    """Compile the project's modules, as installing it does and as any first run leaves them.

    With ``PYTHONDONTWRITEBYTECODE`` set (as on shared test machines) no run writes them,
    and every run compiles the project's source (the generated schema validators alone are
    1 MB) where the floors import installed, compiled packages: 0.1 s of every validate.
    """
    subprocess.run([PY, "-m", "compileall", "-q", "modelops", "components", "benchmarks"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def project(work: Path, n: int, artifact: Path, tag: str = "") -> Path:
    root = work / f"bench-{n}{tag}"
    if root.exists():
        shutil.rmtree(root)
    write_project(n, root, artifact)
    return root


# ------------------------------------------------------------------------------------ steps


def bench_validate(results: Results, roots: dict[int, Path], repeat: int) -> None:
    print("validate --no-policies vs CSafeLoader", flush=True)
    scaling = results.scaling.setdefault("validate --no-policies", {})
    for n, root in roots.items():
        files = ["modelops.yaml"] + [f"stacks/{e}.yaml" for e in ENVS]
        ours = repeated(f"{n} ours", lambda: timed([*MODELOPS, "validate", "--no-policies"], root), repeat)
        floor = repeated(f"{n} floor", lambda: timed([PY, "-m", "benchmarks.floor", "yaml", *files], root), repeat)
        scaling[n] = median(ours)
        if n == max(roots):
            results.rows.append(Row("validate --no-policies (3 envs)", f"{n} models", median(ours), median(floor),
                                    "<= 2", len(ours), "floor: PyYAML CSafeLoader parse of the same 4 files"))


def bench_validate_data(results: Results, root: Path, n: int, repeat: int) -> None:
    """validate --no-policies of a spec whose every dataset reads its own CSV: the first run
    (nothing kept) and the next ones (samples kept in .modelops/cache/datafiles)."""
    print(f"validate --no-policies, a CSV per dataset ({n} models)", flush=True)
    files = ["modelops.yaml"] + [f"stacks/{e}.yaml" for e in ENVS]

    def clear() -> None:
        shutil.rmtree(root / ".modelops", ignore_errors=True)

    cold = repeated(f"{n} first run", lambda: timed([*MODELOPS, "validate", "--no-policies"], root), repeat,
                    prepare=clear)
    warm = repeated(f"{n} unchanged files", lambda: timed([*MODELOPS, "validate", "--no-policies"], root), repeat)
    floor = repeated(f"{n} floor", lambda: timed([PY, "-m", "benchmarks.floor", "yaml", *files], root), repeat)
    datasets = len(list((root / "data").glob("*.csv")))
    note = f"{datasets} CSVs of {DATA_ROWS:,} rows, 10-30 columns; floor: CSafeLoader parse of the 4 spec files"
    results.rows.append(Row("validate --no-policies, a CSV per dataset, first run", f"{n} models", median(cold),
                            median(floor), "", len(cold), note))
    results.rows.append(Row("validate --no-policies, a CSV per dataset, files unchanged", f"{n} models",
                            median(warm), median(floor), "<= 2", len(warm), note))


def bench_validate_policies(results: Results, roots: dict[int, Path], repeat: int, sizes: list[int]) -> None:
    print("validate with policies, cold and warm render cache", flush=True)
    cold_s = results.scaling.setdefault("validate (policies, cold)", {})
    warm_s = results.scaling.setdefault("validate (policies, warm)", {})
    for n in sizes:
        root = roots[n]

        def clear(root: Path = root) -> None:
            shutil.rmtree(root / ".modelops" / "cache", ignore_errors=True)

        cold = repeated(f"{n} cold", lambda: timed([*MODELOPS, "validate"], root), max(1, repeat // 2), prepare=clear)
        warm = repeated(f"{n} warm", lambda: timed([*MODELOPS, "validate"], root), repeat)
        # one model changed: only it is rendered again (per environment)
        spec = root / "modelops.yaml"
        original = spec.read_text()
        spec.write_text(original.replace("description: Scoring model 1\n", "description: Scoring model 1 (v2)\n", 1))
        try:
            changed = repeated(f"{n} one model changed", lambda: timed([*MODELOPS, "validate"], root), 1)
        finally:
            spec.write_text(original)
        cold_s[n], warm_s[n] = median(cold), median(warm)
        if n == max(sizes):
            results.rows.append(Row("validate with policies, cold cache (3 envs)", f"{n} models", median(cold), None, "",
                                    len(cold), "renders every environment"))
            results.rows.append(Row("validate with policies, warm cache", f"{n} models", median(warm), None, "",
                                    len(warm), "the findings kept in .modelops/cache/findings: nothing rendered"))
            results.rows.append(Row("validate with policies, one model changed", f"{n} models", median(changed),
                                    None, "", 1, "re-renders that model only"))


def bench_plan(results: Results, roots: dict[int, Path], repeat: int, work: Path) -> None:
    """``plan --json`` and its two floors, interleaved run by run (``repeat`` rounds at every size).

    The floors: the bare program with required inputs only (the target's), and the bare
    program with the plan's own inputs (what the SDK costs for the inputs themselves).
    """
    print("plan --json vs bare Pulumi programs of the same resources (interleaved)", flush=True)
    scaling = results.scaling.setdefault("plan --json (dev)", {})
    floor_scaling = results.scaling.setdefault("floor: bare program (dev)", {})
    inputs_scaling = results.scaling.setdefault("floor: bare program, same inputs (dev)", {})
    for n, root in roots.items():
        plan_file = work / f"plan-{n}.json"
        again_file = work / f"plan-{n}-again.json"
        ours: list[Run] = []
        again: list[Run] = []
        floor: list[Run] = []
        inputs: list[Run] = []
        for _ in range(repeat):
            # plan renders through the project's render cache: timed cold (as on a fresh
            # checkout), then once more from the cache it left (reported, no target)
            shutil.rmtree(root / ".modelops" / "cache", ignore_errors=True)
            ours.append(timed([*MODELOPS, "plan", "--env", "dev", "--json"], root, stdout_file=plan_file))
            again.append(timed([*MODELOPS, "plan", "--env", "dev", "--json"], root, stdout_file=again_file))
            if again_file.read_bytes() != plan_file.read_bytes():
                raise SystemExit(f"plan from the render cache differs from the plan that filled it: {again_file}")
            floor.append(timed([PY, "-m", "benchmarks.floor", "render", str(plan_file)], root))
            inputs.append(timed([PY, "-m", "benchmarks.floor", "render-inputs", str(plan_file)], root))
            print(f"    {n}: ours {ours[-1].seconds:.2f} s (again, cache warm: {again[-1].seconds:.2f} s), "
                  f"floor {floor[-1].seconds:.2f} s, floor with the same inputs {inputs[-1].seconds:.2f} s", flush=True)
        plan = json.loads(plan_file.read_text())
        resources = len(plan["resources"])
        custom = sum(1 for r in plan["resources"] if r["custom"])
        scaling[n], floor_scaling[n], inputs_scaling[n] = median(ours), median(floor), median(inputs)
        if n == max(roots):
            size = f"{n} models ({custom} resources, {resources} registrations)"
            results.rows.append(Row("plan --json, one environment", size, median(ours), median(floor), "<= 1.15",
                                    len(ours), "floor: same pulumi_aws classes, names, parents; required inputs only"))
            results.rows.append(Row("plan --json vs the same with its own inputs", size, median(ours),
                                    median(inputs), "", len(ours),
                                    "reference, no target: the floor program given every resource's inputs as "
                                    "plain values (no outputs of other resources, no component code)"))
            results.rows.append(Row("plan --json again, render cache warm", size, median(again), None, "",
                                    len(again), "reference, no target: the same plan read from the "
                                    ".modelops/cache the cold plan left (byte-identical output)"))
            peak = max(r.tree_rss_kb for r in ours)
            floor_peak = max(r.tree_rss_kb for r in floor)
            results.memory = (f"{peak / 1024:.0f} MiB summed over the processes of `modelops plan --json` rendering "
                              f"{custom} resources ({resources} registrations)")
            results.resources_per_model = custom / n
            results.rows.append(Row("peak memory of that plan (MiB)", f"{custom} resources", peak / 1024, None,
                                    "", 1, f"the bare program's peak: {floor_peak / 1024:.0f} MiB"))
            results.notes.append(
                f"plan of {n} models: {statistics.median(r.cpu_seconds for r in ours):.1f} CPU seconds (its render "
                f"processes included; {_cpus()} CPUs available) in {median(ours):.1f} s, the bare program "
                f"{statistics.median(r.cpu_seconds for r in floor):.1f} CPU seconds in {median(floor):.1f} s")


def bench_memory(results: Results, work: Path, artifact: Path, resources: int) -> None:
    """Peak memory of ``plan --json`` rendering about ``resources`` resources, and of the bare program."""
    if not results.resources_per_model:
        return
    n = math.ceil(resources / results.resources_per_model)
    print(f"peak memory, a {resources}-resource render ({n} models)", flush=True)
    root = project(work, n, artifact, "-memory")
    plan_file = work / f"plan-memory-{n}.json"
    ours = timed([*MODELOPS, "plan", "--env", "dev", "--json"], root, stdout_file=plan_file)
    plan = json.loads(plan_file.read_text())
    custom = sum(1 for r in plan["resources"] if r["custom"])
    floor = timed([PY, "-m", "benchmarks.floor", "render", str(plan_file)], root)
    results.rows.append(Row(f"peak memory, {resources:,}-resource render (MiB)",
                            f"{custom} resources ({n} models, {len(plan['resources'])} registrations)",
                            ours.tree_rss_kb / 1024, None, "< 1024 MiB", 1,
                            "yes" if ours.tree_rss_kb < 1024 * 1024 else "NO"))
    results.notes.append(f"peak memory of the {resources:,}-resource render: ours {ours.tree_rss_kb / 1024:.0f} MiB "
                         f"summed over its processes (the largest one {ours.maxrss_kb / 1024:.0f} MiB), the bare "
                         f"program registering the same resources {floor.tree_rss_kb / 1024:.0f} MiB (RSS sampled "
                         f"every {SAMPLE_SECONDS} s, pages shared by forked processes counted in each)")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
                        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"})


def bench_diff(results: Results, root: Path, n: int, repeat: int) -> None:
    print(f"diff, one model changed, 3 envs ({n} models)", flush=True)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "base")
    spec = root / "modelops.yaml"
    changed = model_name(1)
    text = spec.read_text()
    spec.write_text(text.replace("description: Scoring model 1\n", "description: Scoring model 1 (v2)\n", 1))
    assert spec.read_text() != text, changed
    cache = root / ".modelops" / "cache"
    snapshot = root.parent / f"{root.name}-cache-warm"
    cmd = [*MODELOPS, "diff", "--base", "HEAD", "--format", "json"]

    def warm_base() -> None:
        # the cache as a previous review (of the base) left it: every group of the base rendered
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(snapshot, cache)

    # render the base once, keep that cache
    shutil.rmtree(cache, ignore_errors=True)
    spec.write_text(text)
    timed([*MODELOPS, "validate"], root)
    shutil.copytree(cache, snapshot)
    spec.write_text(text.replace("description: Scoring model 1\n", "description: Scoring model 1 (v2)\n", 1))
    incremental = repeated("incremental", lambda: timed(cmd, root), repeat, prepare=warm_base)
    full = repeated("full re-render", lambda: timed(cmd, root, {"MODELOPS_RENDER_CACHE": "off"}), max(1, repeat // 2))
    results.rows.append(Row("diff, one model changed, 3 envs", f"{n} models", median(incremental), median(full),
                            "faster>= 25", len(incremental),
                            "floor column: the same diff rendering both sides in full (MODELOPS_RENDER_CACHE=off)"))
    results.scaling.setdefault("diff incremental", {})[n] = median(incremental)

    # the first review on a fresh runner: a clone at another path, with main's cache restored
    # (what pr.yml restores from the deploy workflow's render-cache job) and nothing else
    fresh = root.parent / f"{root.name}-fresh-runner"
    changed_text = spec.read_text()

    def fresh_runner() -> None:
        shutil.rmtree(fresh, ignore_errors=True)
        _git(root.parent, "clone", "-q", str(root), str(fresh))
        shutil.copytree(snapshot, fresh / ".modelops" / "cache")
        (fresh / "modelops.yaml").write_text(changed_text)

    first = repeated("fresh runner, main's cache", lambda: timed([*MODELOPS, "diff", "--base", "origin/HEAD", "--format",
                                                                  "json"], fresh), repeat, prepare=fresh_runner)
    results.rows.append(Row("first diff on a fresh runner, main's cache restored", f"{n} models", median(first),
                            median(full), "seconds<= 10", len(first),
                            "a clone at another path with main's .modelops/cache only; floor column: the full re-render"))
    shutil.rmtree(fresh, ignore_errors=True)


class Emulator:
    """The embedded TLS emulator in its own process, started and stopped by the harness."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def __enter__(self) -> "Emulator":
        ready = self.work / f"emulator-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen([PY, "-m", "modelops.local.emulator", "--port", "0", "--tls-dir",
                                      str(self.work / "tls"), "--ready-file", str(ready)],
                                     cwd=self.work, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text().strip().endswith("}"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        self.url, self.ca = info["url"], info["ca_bundle"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench_up(results: Results, root: Path, n: int, work: Path, repeat: int = 1) -> None:
    """``up`` of a fresh checkout (no state, no render cache), its parts, and their floors, ``repeat`` rounds.

    Each round runs ``up --json`` three times, each on a fresh emulator: once recording its
    AWS calls (the floor replays them), once as users run it (timed as ours: the recording
    encodes every call and response, which is the harness's work, not ``up``'s), once after
    a ``plan --env dev --json`` (not timed; its output is the registrations the bare SDK
    render replays). ``up --json`` reports its parts (``phases``): the spec check (load,
    schema, the mandatory policies: one render of the environment), the registry publish,
    the apply and the smoke checks. The apply and smoke checks are compared with the replay of
    the calls they made; the spec check with a bare SDK render of the same registrations.
    """
    print(f"up of the {n}-model dev env, its parts vs the replayed AWS calls and a bare render", flush=True)
    ours: list[Run] = []
    after_plan: list[Run] = []
    recorded: list[Run] = []
    floor: list[Run] = []
    bare: list[Run] = []
    parts: list[dict[str, float]] = []
    errors: list[int] = []
    calls_made = 0
    plan_file = work / f"plan-up-{n}.json"

    def fresh_up(extra_env: dict[str, str], *, planned: bool = False) -> Run:
        shutil.rmtree(root / ".modelops" / "state", ignore_errors=True)
        shutil.rmtree(root / ".modelops" / "cache", ignore_errors=True)
        if planned:  # a review's plan first (not timed): it leaves the render cache up's policy check reads
            timed([*MODELOPS, "plan", "--env", "dev", "--json"], root, stdout_file=plan_file)
        with Emulator(work) as emu:
            return timed([*MODELOPS, "up", "--env", "dev", "--endpoint-url", emu.url, "--json"], root,
                         {"AWS_CA_BUNDLE": emu.ca, **extra_env})

    for i in range(repeat):
        calls = work / f"calls-{n}-{i}.jsonl"
        calls.unlink(missing_ok=True)
        recorded.append(fresh_up({"MODELOPS_RECORD_AWS_CALLS": str(calls)}))
        ours.append(fresh_up({}))
        parts.append(json.loads(ours[-1].stdout)["phases"])
        after_plan.append(fresh_up({}, planned=True))
        with Emulator(work) as emu:
            # the registry the recorded up read (its lookups and the models' packages), not timed:
            # up publishes before its apply, with calls the recording does not hold
            shutil.rmtree(root / ".modelops" / "state", ignore_errors=True)
            timed([*MODELOPS, "publish", "--all", "--env", "dev", "--endpoint-url", emu.url], root,
                  {"AWS_CA_BUNDLE": emu.ca})
            floor.append(timed([PY, "-m", "benchmarks.replay", str(calls), emu.url, "--ca-bundle", emu.ca], root))
        bare.append(timed([PY, "-m", "benchmarks.floor", "render", str(plan_file)], root))
        replayed = json.loads(floor[-1].stdout.strip().splitlines()[-1])
        errors.append(replayed["errors"])
        calls_made = replayed["calls"]
        print(f"    ours: {ours[-1].seconds:.2f} s {parts[-1]} (recording its calls: {recorded[-1].seconds:.2f} s; "
              f"after a plan: {after_plan[-1].seconds:.2f} s), replay: {floor[-1].seconds:.2f} s ({replayed}), "
              f"bare render: {bare[-1].seconds:.2f} s", flush=True)

    def part(*names: str) -> float:
        return statistics.median(sum(p.get(k, 0.0) for k in names) for p in parts)

    results.rows.append(Row("up, dev env to the TLS emulator, whole command", f"{n} models ({calls_made} AWS calls)",
                            median(ours), None, "", len(ours),
                            f"reported, no target; its parts (median s): spec check {part('check'):.2f}, registry "
                            f"publish {part('publish'):.2f}, apply {part('apply'):.2f}, smoke checks "
                            f"{part('smoke_checks'):.2f}; the recorded up itself took {median(recorded):.2f} s"))
    results.rows.append(Row("up: apply and smoke checks", f"{n} models ({calls_made} AWS calls)",
                            part("apply", "smoke_checks"), median(floor), "<= 1.3", len(ours),
                            f"floor: the calls they made (recorded) replayed by boto3 on a fresh emulator holding the registry, same "
                            f"concurrency; replay errors per round: {errors}"))
    results.rows.append(Row("up: spec check (the mandatory policies, one render)", f"{n} models",
                            part("check"), median(bare), "<= 1.15", len(ours),
                            "floor: the bare program registering the same resources (benchmarks.floor render of "
                            "`plan --env dev --json`), whole process; ours is timed inside up from the start of the command (imports included)"))
    results.rows.append(Row("up after a plan of the same spec", f"{n} models", median(after_plan), None,
                            "", len(after_plan), "reference, no target: `plan --env dev` first (not timed), "
                            "so up's policy check reads the render cache it left"))
    results.scaling.setdefault("up (dev)", {})[n] = median(ours)


# ------------------------------------------------------------------------------------ report


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine() -> str:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.system()} {platform.machine()}, nproc {os.cpu_count()}, memory {mem}, "
            f"load average at start {load}, Python {platform.python_version()}")


def scaling_lines(results: Results) -> list[str]:
    lines = ["| step | " + " | ".join(f"{n} models" for n in sorted({n for s in results.scaling.values() for n in s}))
             + " | growth per 10x models |", ""]
    sizes = sorted({n for s in results.scaling.values() for n in s})
    lines[1] = "|---|" + "---|" * len(sizes) + "---|"
    for step, by_size in results.scaling.items():
        if not by_size:
            continue
        cells = [f"{by_size[n]:.2f} s" if n in by_size else "-" for n in sizes]
        growth = []
        known = sorted(by_size)
        for a, b in zip(known, known[1:]):
            growth.append(f"{a}->{b}: x{by_size[b] / by_size[a]:.1f} (models x{b / a:.0f})")
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {'; '.join(growth)} |")
    return lines


def table(results: Results) -> list[str]:
    lines = ["| step | size | ours (median s) | floor (median s) | ratio ours/floor | target | met | runs | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results.rows:
        floor = f"{r.floor:.2f}" if r.floor else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio else "-"
        if r.target.startswith("faster"):
            ratio = f"{1 / r.ratio:.1f}x faster" if r.ratio else "-"
            target = f">= {r.target.split(' ')[1]}x faster"
        else:
            target = r.target
        met = r.met() or ("" if r.floor else r.note if r.note in ("yes", "NO") else "")
        note = "" if r.note in ("yes", "NO") else r.note
        lines.append(f"| {r.step} | {r.size} | {r.ours:.2f} | {floor} | {ratio} | {target} | {met} | {r.runs} | {note} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="model counts (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median); long ones run once")
    parser.add_argument("--policy-sizes", default=None,
                        help="sizes for validate with policies (default: sizes up to 100: a cold 1,000-model run "
                             "renders 3 x 20,000 registrations, several minutes)")
    parser.add_argument("--diff-size", type=int, default=1000, help="model count of the diff step (0: skip)")
    parser.add_argument("--data-size", type=int, default=1000,
                        help="model count of the validate step whose datasets read their own CSV (0: skip)")
    parser.add_argument("--memory-resources", type=int, default=10_000,
                        help="resource count of the peak-memory render (0: skip)")
    parser.add_argument("--up-size", type=int, default=100, help="model count of the up step (0: skip)")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    policy_sizes = (sorted(int(s) for s in args.policy_sizes.split(",")) if args.policy_sizes
                    else [s for s in sizes if s <= 100] or sizes[:1])
    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = dt.datetime.now(dt.timezone.utc)
    results = Results()
    where = machine()
    print(f"{started:%Y-%m-%d %H:%M} UTC; {where}", flush=True)
    t0 = time.monotonic()
    work = args.work or Path(tempfile.mkdtemp(prefix="modelops-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        compile_bytecode()
        artifact = prebuilt_artifact(work)
        roots = {n: project(work, n, artifact) for n in sorted(set(sizes) | set(policy_sizes))}
        bench_validate(results, {n: roots[n] for n in sizes}, args.repeat)
        if args.data_size:
            data_root = work / f"bench-{args.data_size}-data"
            shutil.rmtree(data_root, ignore_errors=True)
            write_project(args.data_size, data_root, artifact, data_rows=DATA_ROWS)
            bench_validate_data(results, data_root, args.data_size, args.repeat)
        bench_validate_policies(results, roots, args.repeat, policy_sizes)
        bench_plan(results, {n: roots[n] for n in sizes}, args.repeat, work)
        if args.memory_resources:
            bench_memory(results, work, artifact, args.memory_resources)
        if args.diff_size:
            bench_diff(results, project(work, args.diff_size, artifact, "-diff"), args.diff_size, args.repeat)
        if args.up_size:
            bench_up(results, project(work, args.up_size, artifact, "-up"), args.up_size, work, args.repeat)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    if max(policy_sizes) < max(sizes):
        results.notes.append(f"validate with policies measured up to {max(policy_sizes)} models: a cold run at "
                             f"{max(sizes)} renders every environment in full (3 x ~{max(sizes) * 20} registrations), "
                             "minutes per run; pass --policy-sizes to include it")
    text = "\n".join([
        f"## {started:%Y-%m-%d %H:%M} UTC", "",
        f"Machine: {where}", "",
        f"Command: `{command}` (from the repository root; `make bench` runs it with the defaults)", "",
        f"Total time: {elapsed / 60:.1f} min", "",
        *table(results), "",
        "How each step's time grows with the spec (median seconds, whole process):", "",
        *scaling_lines(results), "",
        *(f"- {n}" for n in results.notes), "",
    ])
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text() if args.out.exists() else ""
    header = "# Benchmark results\n\nNewest first. Produced by `benchmarks/run.py`; see benchmarks/README.md.\n\n"
    body = previous.split("\n\n", 2)[-1] if previous.startswith("# Benchmark results") else previous
    args.out.write_text(header + text + "\n" + (body if body.strip() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
