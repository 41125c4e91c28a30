"""A large environment renders in several processes at once: the graph is the one a single
process renders, in every field; a failing shard reports the program's error as a single
process does; Ctrl-C leaves no render process behind; ``MODELOPS_RENDER_JOBS`` is checked.
A review of several large environments shares them out over processes: the same review."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from modelops.components.environment import dataset_of
import modelops.review.diff as diff_module
from modelops.spec.envs import load_environment
from modelops.errors import UsageError
from modelops.graph.forked import fork_map, share_out
from modelops.graph.forked import RENDER_JOBS_ENV
from modelops.graph.render import render, render_jobs, render_parallel, shards
from modelops.graph.runtime import ProgramError
from tests.graph.helpers import FIXED_ARTIFACT, default_sigint, ending, graph_json, write_rich_project
from tests.helpers import ROOT, git


def _env(spec: Path, env: str = "prod"):
    resolved = load_environment(spec, env)
    models = {k: dataclasses.replace(m, artifact=FIXED_ARTIFACT) for k, m in resolved.models.items()}
    return dataclasses.replace(resolved, models=models)


def _every_field(regs) -> list[str]:
    """Every field of every registration (outputs too), a file asset by its path."""
    return sorted(json.dumps(dataclasses.asdict(r), sort_keys=True, default=lambda o: ["asset", o.path]) for r in regs)


def test_a_parallel_render_registers_exactly_the_single_process_graph(tmp_path: Path) -> None:
    # GIVEN a 40-model environment with secrets, freshness monitors, KMS and rollbacks
    env = _env(write_rich_project(tmp_path / "proj", 40))
    # WHEN it is rendered in one process, and in three
    single = render(env, jobs=1)
    parallel = render_parallel(env, 3)
    # THEN the parallel path ran (no fallback) and registered the same resources, every field equal
    assert parallel is not None
    assert len(parallel) == len(single.registrations) > 500
    assert _every_field(parallel) == _every_field(single.registrations)
    # AND the graph as plan prints it is the same, secrets masked the same way
    assert graph_json(render(env, jobs=3)) == graph_json(single)
    dumped = json.dumps(graph_json(render(env, jobs=3)))
    assert "hooks.example.com" not in dumped and "[secret]" in dumped


def test_shards_split_the_datasets_with_all_their_entities_and_balance_the_work(tmp_path: Path) -> None:
    # GIVEN a 43-model environment (9 datasets of up to 5 models, with their monitors)
    env = _env(write_rich_project(tmp_path / "proj", 43))
    # WHEN it is split for 4 processes
    parts = shards(env, 4)
    # THEN every dataset is in exactly one shard
    assert len(parts) == 4
    assert sorted(d for p in parts for d in p) == sorted(env.datasets)
    # AND each shard's models and monitors are those of its datasets, the shards about even
    sizes = []
    for part in parts:
        models = [m for m in env.models if dataset_of(env, "model", m) in part]
        monitors = [m for m in env.monitors if dataset_of(env, "monitor", m) in part]
        sizes.append(len(models) * 10 + len(monitors) * 3 + len(part) * 9)
    assert max(sizes) - min(sizes) <= 10 * 5 + 3 * 12 + 9, sizes  # within one dataset's entities
    # AND asking for more processes than datasets gives a shard per dataset
    assert len(shards(env, 50)) == len(env.datasets)


def test_a_program_error_in_any_shard_is_the_single_process_error(tmp_path: Path) -> None:
    # GIVEN an environment whose last model (in a forked shard, not the first) has no artifact
    env = _env(write_rich_project(tmp_path / "proj", 40))
    first = shards(env, 3)[0]
    last = next(m for m in sorted(env.models, reverse=True) if dataset_of(env, "model", m) not in first)
    broken = dataclasses.replace(env, models={**env.models, last: dataclasses.replace(env.models[last], artifact=None)})
    # WHEN it is rendered in one process and in three
    with pytest.raises(ProgramError) as single:
        render(broken, jobs=1)
    # THEN the parallel path gives up, and the render reports the same error
    assert render_parallel(broken, 3) is None
    with pytest.raises(ProgramError) as parallel:
        render(broken, jobs=3)
    assert str(parallel.value) == str(single.value) and last in str(single.value)


def test_the_jobs_variable_is_checked_and_small_environments_render_in_one_process(tmp_path: Path, monkeypatch) -> None:
    env = _env(write_rich_project(tmp_path / "proj", 40))
    monkeypatch.setenv(RENDER_JOBS_ENV, "3")
    assert render_jobs(env) == 3
    monkeypatch.setenv(RENDER_JOBS_ENV, "500")  # no more processes than datasets
    assert render_jobs(env) == len(env.datasets)
    for bad in ("0", "two", "-1", "1.5"):
        monkeypatch.setenv(RENDER_JOBS_ENV, bad)
        with pytest.raises(UsageError, match=RENDER_JOBS_ENV):
            render_jobs(env)
    monkeypatch.delenv(RENDER_JOBS_ENV)
    small = dataclasses.replace(env, models=dict(list(env.models.items())[:5]))
    assert render_jobs(small) == 1


def _modelops(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", **extra}
    env.pop("MODELOPS_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_plan_prints_the_same_json_in_one_process_and_in_several(tmp_path: Path) -> None:
    # GIVEN a 40-model project with its (small) artifact in place
    spec = write_rich_project(tmp_path / "proj", 40)
    # WHEN the command plans it with one render process and with two (each rendering: no cache)
    one = _modelops("plan", "--env", "prod", "--json", cwd=spec.parent, **{RENDER_JOBS_ENV: "1"},
                    MODELOPS_RENDER_CACHE="off")
    two = _modelops("plan", "--env", "prod", "--json", cwd=spec.parent, **{RENDER_JOBS_ENV: "2"},
                    MODELOPS_RENDER_CACHE="off")
    # THEN both succeed with byte-identical output
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert json.loads(one.stdout)["counts"]["aws:sagemaker/endpoint:Endpoint"] == 40
    assert one.stdout == two.stdout
    # AND a bad value is a one-line usage error, exit 2, nothing printed on stdout, with the
    # render cache on too (a plan of this content is cached by then: no render would run)
    one_cached = _modelops("plan", "--env", "prod", "--json", cwd=spec.parent)
    assert one_cached.returncode == 0 and one_cached.stdout == one.stdout, one_cached.stderr
    for cache in ("on", "off"):
        bad = _modelops("plan", "--env", "prod", "--json", cwd=spec.parent, **{RENDER_JOBS_ENV: "many"},
                        MODELOPS_RENDER_CACHE=cache)
        assert bad.returncode == 2, bad.stderr
        assert bad.stdout == "" and bad.stderr.count("\n") == 1 and RENDER_JOBS_ENV in bad.stderr, bad.stderr


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parallel renders fork: Linux only")
def test_ctrl_c_during_a_parallel_render_leaves_no_render_process(tmp_path: Path) -> None:
    # GIVEN a 120-model plan rendering in three processes
    spec = write_rich_project(tmp_path / "proj", 120)
    env = {**os.environ, RENDER_JOBS_ENV: "3"}
    proc = subprocess.Popen([sys.executable, "-m", "modelops", "plan", "--env", "prod", "--json"], cwd=spec.parent,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    with ending(proc):
        deadline = time.monotonic() + 120
        forked: set[int] = set()
        while len(forked) < 2 and time.monotonic() < deadline and proc.poll() is None:
            forked = _children(proc.pid)
            time.sleep(0.05)
        assert len(forked) == 2, "the render did not fork its two shards"
        # WHEN the user presses Ctrl-C (the command alone receives it, as from `kill -INT`)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    # THEN the command stops with the interrupt's exit code, prints no plan, and its shards are gone
    assert proc.returncode == 130, err
    assert out == ""
    for pid in forked:
        assert not Path(f"/proc/{pid}").exists(), f"render process {pid} still exists"


# ------------------------------------------------------------ forked work, reviews


def test_forked_work_comes_back_in_order_from_other_processes() -> None:
    # WHEN three items are worked on, the first here
    results = fork_map(lambda item: (item * 2, os.getpid()), [1, 2, 3], here=lambda item: (item * 2, "here"))
    # THEN the results are in the items' order, the first made here, the others each in a process of its own
    assert results is not None
    assert [r[0] for r in results] == [2, 4, 6]
    assert results[0][1] == "here"
    assert len({results[1][1], results[2][1], os.getpid()}) == 3


def test_a_failed_forked_item_asks_the_caller_to_do_the_work_itself() -> None:
    def work(item: int) -> int:
        if item == 3:
            raise ValueError("item 3 cannot be done")
        return item

    # WHEN a forked item raises, or its process dies
    assert fork_map(work, [1, 2, 3]) is None
    assert fork_map(lambda item: os._exit(9) if item == 2 else item, [1, 2]) is None
    # THEN the caller is told (None); an error of the item done here is raised as it is
    with pytest.raises(ValueError, match="item 3"):
        fork_map(work, [3, 1])


def test_an_error_here_leaves_no_forked_process_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()

    def slow(item: int) -> int:
        (pids / str(os.getpid())).write_text("")
        time.sleep(60)
        return item

    def failing(item: int) -> int:
        deadline = time.monotonic() + 30
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("the work here failed")

    # GIVEN two forked items still at work WHEN the item done here fails
    with pytest.raises(RuntimeError, match="failed"):
        fork_map(slow, [0, 1, 2], here=failing)
    # THEN its error is raised and both forked processes are gone (killed and reaped)
    forked = [int(p.name) for p in pids.iterdir()]
    assert len(forked) == 2
    for pid in forked:
        assert not Path(f"/proc/{pid}").exists(), f"forked process {pid} still exists"


def test_environments_are_shared_out_over_processes_and_come_back_in_order(monkeypatch) -> None:
    # GIVEN four environments to review and two CPUs' worth of processes allowed
    monkeypatch.setenv(RENDER_JOBS_ENV, "2")
    names = ["dev", "prod", "qa", "staging"]

    def review(chunk, jobs):
        return [(name, f"{os.getpid()}/{jobs}") for name in chunk]

    # WHEN they are reviewed
    reviews = share_out(review, names, 40)
    # THEN the results come back in the environments' order
    assert [name for name, _ in reviews] == names
    # AND they were shared out over three processes (one per CPU and one more), this one
    # included, each render in one process
    made_in = [where for _, where in reviews]
    assert len(set(made_in)) == 3
    assert made_in[0] == f"{os.getpid()}/1" and made_in[3] == made_in[0]
    assert all(where.endswith("/1") for where in made_in)
    # AND with one process allowed, or small environments, they are all reviewed here,
    # renders left to their default
    monkeypatch.setenv(RENDER_JOBS_ENV, "1")
    assert {where for _, where in share_out(review, names, 40)} == {f"{os.getpid()}/None"}
    monkeypatch.delenv(RENDER_JOBS_ENV)
    assert {where for _, where in share_out(review, names, 5)} == {f"{os.getpid()}/None"}


def test_diff_of_three_environments_prints_the_same_review_in_one_process_and_in_several(tmp_path: Path) -> None:
    # GIVEN a 40-model project in git with three environments, and a change touching each
    spec = write_rich_project(tmp_path / "proj", 40)
    root = spec.parent
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"tags": {"stage": "dev"}}))
    (root / "stacks" / "staging.yaml").write_text(yaml.safe_dump({"tags": {"stage": "staging"}}))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    data = yaml.safe_load(spec.read_text())
    first = sorted(data["models"])[0]
    data["models"][first]["description"] = "scoring, second version"
    data["models"].pop(sorted(data["models"])[-1])
    data["monitors"] = {k: v for k, v in data["monitors"].items() if v.get("model") in data["models"] or "dataset" in v}
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    (root / "stacks" / "staging.yaml").write_text(yaml.safe_dump({"tags": {"stage": "staging", "team": "ml"}}))
    # WHEN it is reviewed in one process and in two (each from a cold render cache)
    one = _modelops("diff", "--base", "HEAD", "--format", "json", cwd=root, **{RENDER_JOBS_ENV: "1"})
    shutil.rmtree(root / ".modelops" / "cache")
    two = _modelops("diff", "--base", "HEAD", "--format", "json", cwd=root, **{RENDER_JOBS_ENV: "2"})
    # THEN both print the same review, byte for byte, and it shows each environment's change
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert one.stdout == two.stdout
    review = {e["env"]: e for e in json.loads(one.stdout)["environments"]}
    assert sorted(review) == ["dev", "prod", "staging"]
    for env in review.values():
        assert {(e["kind"], e["name"], e["action"]) for e in env["entities"]} >= {("models", first, "changed")}
        assert env["counts"]["delete"] > 0
    assert any(s["path"].startswith("tags") for s in review["staging"]["settings"])
    # AND the pull-request comment (its diagrams drawn from both sides' specs) is the same too
    comments = [_modelops("diff", "--base", "HEAD", "--format", "markdown", cwd=root, **{RENDER_JOBS_ENV: jobs})
                for jobs in ("1", "2")]
    assert comments[0].returncode == 0, comments[0].stderr
    assert "```mermaid" in comments[0].stdout and comments[0].stdout == comments[1].stdout


def test_validate_of_three_environments_reports_the_same_policy_problems_in_one_process_and_in_several(
        tmp_path: Path) -> None:
    # GIVEN a 40-model project whose staging overlay breaks a mandatory policy for every model
    spec = write_rich_project(tmp_path / "proj", 40)
    root = spec.parent
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"tags": {"stage": "dev"}}))
    (root / "stacks" / "staging.yaml").write_text(yaml.safe_dump({"encryption": "sse-s3"}))
    # WHEN every environment is validated with one process and with two
    runs = []
    for jobs in ("1", "2"):
        shutil.rmtree(root / ".modelops", ignore_errors=True)
        runs.append(_modelops("validate", cwd=root, **{RENDER_JOBS_ENV: jobs}))
    # THEN both exit 2 with the same problems, one line each, all of staging and naming its overlay
    one, two = runs
    assert one.returncode == two.returncode == 2, one.stderr
    assert one.stderr == two.stderr and one.stdout == two.stdout
    lines = one.stderr.strip().splitlines()
    assert "Traceback" not in one.stderr
    # (prod, protected, runs each model on one instance: SageMaker.4, a security control, says so)
    staging = [line for line in lines if "[SageMaker.4] (prod)" not in line]
    assert len(staging) >= 40 and all("[endpoint-encrypted] (staging)" in line for line in staging), staging[:3]
    assert all(line.startswith("stacks/staging.yaml:") or line.startswith("modelops.yaml:") for line in lines)


def _project_in_git(root: Path, n_models: int) -> Path:
    spec = write_rich_project(root, n_models)
    (root / "stacks" / "dev.yaml").write_text(yaml.safe_dump({"tags": {"stage": "dev"}}))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return spec


def test_a_large_spec_loads_its_base_side_in_a_forked_process_with_the_same_review(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    # GIVEN a project in git with one model changed in the working tree, two processes allowed
    spec = _project_in_git(tmp_path / "proj", 8)
    data = yaml.safe_load(spec.read_text())
    first = sorted(data["models"])[0]
    data["models"][first]["description"] = "scoring, second version"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(RENDER_JOBS_ENV, "2")
    # WHEN it is reviewed with both sides loaded here, and with the base loaded in a forked process
    monkeypatch.setattr(diff_module, "PARALLEL_LOAD_BYTES", 1 << 40)
    here = diff_module.diff(spec, "HEAD")
    monkeypatch.setattr(diff_module, "PARALLEL_LOAD_BYTES", 0)
    forked = diff_module.diff(spec, "HEAD")
    # THEN the reviews are the same, and show the change
    assert forked.to_json() == here.to_json()
    assert ("models", first, "changed") in {(e.kind, e.name, e.action) for env in forked.envs for e in env.entities}


def test_a_base_that_does_not_load_in_the_forked_process_is_reported_as_usual(tmp_path: Path, monkeypatch) -> None:
    # GIVEN a base commit whose spec does not load (a misspelt key), fixed in the working tree
    spec = _project_in_git(tmp_path / "proj", 8)
    good = spec.read_text()
    spec.write_text(good.replace("project:", "projekt:", 1))
    git(spec.parent, "commit", "-q", "-am", "broken")
    spec.write_text(good)
    monkeypatch.setenv(RENDER_JOBS_ENV, "2")
    # WHEN it is reviewed with the base loaded in a forked process, and here
    errors = []
    for threshold in (0, 1 << 40):
        monkeypatch.setattr(diff_module, "PARALLEL_LOAD_BYTES", threshold)
        with pytest.raises(UsageError) as raised:
            diff_module.diff(spec, "HEAD")
        errors.append(str(raised.value))
    # THEN both name the base version and its problem, the same way
    assert errors[0] == errors[1]
    assert errors[0].startswith("the base version (HEAD) does not load: <HEAD>/modelops.yaml:1:1: project: required")
