"""The faster paths produce the same graph as the plain ones: incremental (per-entity cache)
renders equal full renders, repeated renders in one process are independent, and the
call recorder used by the benchmarks records what ``up`` sends without changing it."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import boto3
from moto import mock_aws

from benchmarks.generate import write_project
from modelops.graph.cache import RenderCache
from modelops.spec.envs import load_environment
from modelops.local.apply import RecordingClients
from modelops.components.environment import paced_program, program
from modelops.graph.render import RenderBackend, render
from modelops.graph.runtime import run, settle
from tests.graph.helpers import FIXED_ARTIFACT, default_sigint, ending, fixed_environment, graph_json
from tests.helpers import ROOT


def _bench_env(tmp_path: Path, n: int, env: str = "dev"):
    artifact = tmp_path / "src.tar.gz"
    artifact.write_bytes(b"not read: every model gets the fixed artifact")
    spec = write_project(n, tmp_path / "proj", artifact)
    resolved = load_environment(spec, env)
    models = {k: dataclasses.replace(m, artifact=FIXED_ARTIFACT) for k, m in resolved.models.items()}
    return spec, dataclasses.replace(resolved, models=models)


def _comparable(graph) -> dict:
    data = graph_json(graph)
    return {r["urn"]: r for r in data["resources"]}


def test_incremental_render_equals_full_render_after_one_model_change(tmp_path: Path) -> None:
    # GIVEN a generated 6-model project rendered once through the cache
    _, env = _bench_env(tmp_path, 6, "prod")
    cache = RenderCache()
    cache.render(env)
    # WHEN one model's capacity changes and it is rendered again through the cache
    name = "model-0003"
    model = env.models[name]
    serving = dataclasses.replace(model.serving, instance_count=model.serving.instance_count + 3)
    changed = dataclasses.replace(env, models={**env.models, name: dataclasses.replace(model, serving=serving)})
    incremental = cache.render(changed)
    # THEN only part of it was rendered, and the graph equals a full render, resource by resource
    assert cache.stats["partial"] == 1 and cache.stats["full"] == 1
    full = render(changed)
    got, want = _comparable(incremental), _comparable(full)
    assert sorted(got) == sorted(want)
    for urn in want:
        assert got[urn] == want[urn], urn


def test_cache_key_ignores_where_the_package_file_was_named(tmp_path: Path) -> None:
    # GIVEN the same environment with its package named at two paths (the base of a diff
    # lives in a temporary checkout), the same attached artifact
    _, env = _bench_env(tmp_path, 3)
    moved = dataclasses.replace(env, models={k: dataclasses.replace(m, artifact_source="/elsewhere/model.tar.gz")
                                             for k, m in env.models.items()})
    # THEN every render group has the same key: the second side is a cache hit
    cache = RenderCache()
    assert cache.keys(env) == cache.keys(moved)
    cache.render(env)
    cache.render(moved)
    assert cache.stats == {"full": 1, "partial": 0, "hit": 1}


def test_repeated_renders_in_one_process_are_independent() -> None:
    # GIVEN two example projects rendered one after the other in this process
    first = render(fixed_environment("examples/fraud/modelops.yaml", "dev"))
    second = render(fixed_environment("modelops.yaml", "prod"))
    # THEN each top-level component hangs under its own stack, not the first run's
    for graph, stack in ((first, "urn:pulumi:dev::fraud::pulumi:pulumi:Stack::fraud-dev"),
                         (second, "urn:pulumi:prod::churn::pulumi:pulumi:Stack::churn-prod")):
        top = [r for r in graph.registrations if r.type == "modelops:index:Environment"]
        assert [r.parent for r in top] == [stack]


class _Clients:
    def __init__(self) -> None:
        self._s3 = boto3.client("s3", region_name="eu-west-1")

    def client(self, service: str):
        assert service == "s3"
        return self._s3


def test_recording_clients_record_calls_and_pass_them_through(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    log = tmp_path / "calls.jsonl"
    with mock_aws():
        # GIVEN the recorder around real (moto) clients
        clients = RecordingClients(_Clients(), log)
        s3 = clients.client("s3")
        # WHEN calls go through it
        s3.create_bucket(Bucket="bench-b", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="bench-b", Key="k", Body=b"\x00bytes")
        # THEN they reached AWS unchanged, and each is recorded with its parameters and response
        assert boto3.client("s3", region_name="eu-west-1").get_object(Bucket="bench-b", Key="k")["Body"].read() == b"\x00bytes"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(c["service"], c["operation"]) for c in calls] == [("s3", "create_bucket"), ("s3", "put_object")]
    assert calls[1]["params"]["Body"] == {"__bytes__": "AGJ5dGVz"}
    assert calls[0]["end"] >= calls[0]["start"] and calls[1]["error"] is None
    assert "ETag" in calls[1]["response"]


INTERRUPTED_PROGRAM = """
import asyncio
import time
import pulumi
from modelops.graph.render import RenderBackend
from modelops.graph.runtime import run

class Counting(RenderBackend):
    created = 0

    def create(self, reg):
        Counting.created += 1
        return super().create(reg)

async def endless():
    i, started = 0, False
    while True:  # a program that never ends: only Ctrl-C stops it
        pulumi.CustomResource("test:index:Thing", f"thing-{i}", {"size": i})
        i += 1
        await asyncio.sleep(0.002)  # the SDK registers while the program waits
        if Counting.created >= 20 and not started:
            print("started", flush=True)
            started = True

def program():
    return endless()

try:
    run(program, Counting(), project="p", stack="s")
except KeyboardInterrupt:
    time.sleep(0.5)  # creates already under way end
    at = Counting.created
    time.sleep(1)
    print("interrupted", "no create since" if Counting.created == at else "still creating", flush=True)
"""


def test_ctrl_c_stops_the_program_thread_and_reaches_the_caller(tmp_path: Path) -> None:
    # GIVEN a program running on run()'s own thread, in a child process
    script = tmp_path / "endless.py"
    script.write_text(INTERRUPTED_PROGRAM)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=default_sigint)
    with ending(proc):
        assert proc.stdout.readline().strip() == "started"
        # WHEN the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    # THEN run() raises KeyboardInterrupt in the calling thread and no create starts any more
    assert out.strip() == "interrupted no create since", err
    assert proc.returncode == 0, err


def _modelops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("MODELOPS_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_the_command_delivers_all_its_output_through_a_pipe_and_its_exit_code(tmp_path: Path) -> None:
    # The command exits without tearing its heap down: what it printed must still arrive whole
    # GIVEN a 160-model project, whose resolved spec is far larger than a pipe's buffer
    spec, _ = _bench_env(tmp_path, 160)
    # WHEN it is shown as JSON through a pipe
    shown = _modelops("show", "--env", "dev", "--json", cwd=spec.parent)
    # THEN every byte arrived: the JSON parses and holds every model
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout) > 128 * 1024  # a pipe holds 64 KiB
    assert len(json.loads(shown.stdout)["models"]) == 161  # and the model serving the canaries' package
    # AND bad input still exits 2 with its one-line error
    bad = _modelops("validate", "--env", "nope", cwd=spec.parent)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown environment 'nope'"), bad.stderr


def test_the_fast_exit_runs_exit_handlers_and_waits_for_working_threads(tmp_path: Path) -> None:
    # GIVEN a process with an exit handler and a (non-daemon) thread still working
    code = (
        "import atexit, threading, time\n"
        "from modelops.cli.app import exit_now\n"
        "atexit.register(print, 'handler ran')\n"
        "t = threading.Thread(target=lambda: (time.sleep(0.5), print('thread finished', flush=True)))\n"
        "t.start()\n"
        "print('exiting', flush=True)\n"
        "exit_now(3)\n"
    )
    # WHEN it exits through exit_now
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # THEN the thread finished, the handler ran, and the code is the one given
    assert done.returncode == 3, done.stderr
    assert done.stdout.split("\n")[:3] == ["exiting", "thread finished", "handler ran"], done.stdout


class _InFlight(RenderBackend):
    """Records, at every create, how many registrations were started and not yet done."""

    def __init__(self) -> None:
        super().__init__()
        self.most = 0

    def create(self, reg):
        from pulumi.runtime.settings import _get_rpc_manager

        rpcs = list(_get_rpc_manager().rpcs)
        self.most = max(self.most, sum(not r.done() for r in rpcs))
        return super().create(reg)


def test_the_paced_program_registers_the_same_graph_with_few_registrations_in_flight(tmp_path: Path) -> None:
    # GIVEN a 30-model environment, run as the engine runs it (synchronous) and paced
    _, env = _bench_env(tmp_path, 30)
    plain_backend, paced_backend = _InFlight(), _InFlight()
    plain = run(program(env), plain_backend, project=env.project, stack=env.env)
    paced = run(paced_program(env, settle, every=4), paced_backend, project=env.project, stack=env.env)
    # THEN the registrations are the same, in every field
    def fields(regs):  # every field of every registration; a file asset by its path
        return sorted(json.dumps(dataclasses.asdict(r), sort_keys=True, default=lambda o: ["asset", o.path])
                      for r in regs)

    assert fields(plain) == fields(paced)
    # AND the synchronous program had most of the graph in flight at once, the paced one a few entities' worth
    total = len(plain)
    assert total > 400
    assert plain_backend.most > total // 2, plain_backend.most
    assert paced_backend.most < total // 5, paced_backend.most


def test_a_run_leaves_no_event_loop_unclosed() -> None:
    # GIVEN a render (its registrations are served on worker threads, each with an event loop)
    env = fixed_environment("examples/fraud/modelops.yaml", "prod")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        run(program(env), RenderBackend(), project=env.project, stack=env.env)
        # WHEN what the run left is collected (as a later test or the process's end does)
        gc.collect()
    # THEN no loop is finalised unclosed: such a finaliser printed "Invalid file descriptor: -1"
    unclosed = [str(w.message) for w in caught if "unclosed event loop" in str(w.message)]
    assert unclosed == []


def test_an_environment_without_entities_renders_paced() -> None:
    # GIVEN an environment with no dataset, model or monitor (the program never pauses)
    env = fixed_environment("examples/fraud/modelops.yaml", "prod")
    empty = dataclasses.replace(env, datasets={}, models={}, monitors={})
    # THEN the paced program registers what the synchronous one does
    plain = run(program(empty), RenderBackend(), project=empty.project, stack=empty.env)
    paced = run(paced_program(empty, settle), RenderBackend(), project=empty.project, stack=empty.env)
    assert sorted(r.urn for r in plain) == sorted(r.urn for r in paced) and plain


def test_the_plan_floors_register_the_plans_resources_and_the_inputs_floor_its_inputs(tmp_path: Path) -> None:
    # GIVEN the plan JSON of a 3-model environment, as `modelops plan --json` prints it
    from benchmarks.floor import bare_render
    from modelops.graph.render import masked_inputs

    _, env = _bench_env(tmp_path, 3)
    plan = render(env).to_json()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    want = {r["urn"]: r for r in plan["resources"]}
    # WHEN both floor programs register it
    bare = {r.urn: r for r in bare_render(str(plan_file))}
    with_inputs = {r.urn: r for r in bare_render(str(plan_file), with_inputs=True)}
    # THEN both register the plan's resources (same URNs: types, names, parents)
    assert sorted(bare) == sorted(with_inputs) == sorted(want)
    # AND the reference floor sends every custom resource's inputs as the plan shows them, the bare one far fewer
    custom = [urn for urn, r in want.items() if r["custom"]]
    assert all(masked_inputs(with_inputs[urn]) == want[urn]["inputs"] for urn in custom)
    assert sum(len(bare[urn].inputs) for urn in custom) < sum(len(want[urn]["inputs"]) for urn in custom) / 3


def test_repeated_renders_leave_no_worker_threads_behind() -> None:
    # GIVEN the threads of this process before (pytest's own, any earlier fixture's)
    import threading

    before = {t.ident for t in threading.enumerate()}
    env = fixed_environment("examples/fraud/modelops.yaml", "prod")
    # WHEN the environment is rendered three times, as diff and validate do in one process
    for _ in range(3):
        render(env)
    # THEN every thread a run started (its program thread, the SDK's worker pool) has ended
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []


def test_a_render_leaves_the_collector_as_it_found_it() -> None:
    # GIVEN objects the process holds before a render (a diff's cached graphs), one of them
    # a reference cycle that becomes garbage during the render
    import gc

    class Node:
        pass

    held = [Node() for _ in range(1000)]
    cycle = Node()
    cycle.self = cycle
    thresholds = gc.get_threshold()
    env = fixed_environment("examples/fraud/modelops.yaml", "prod")
    # WHEN an environment is rendered (the objects it did not make are frozen meanwhile)
    graph = render(env)
    # THEN nothing is left frozen, the thresholds are back, and the old cycle is collectable
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
    del cycle
    assert gc.collect() >= 1
    assert held and graph.registrations
