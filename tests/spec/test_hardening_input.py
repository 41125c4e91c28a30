"""Bad input, hardened: every mistake a YAML file can hold is a one-line problem, in bounded
CPU, and nothing is ever provisioned from it.

The corpus itself (exact messages) is run by tests/spec/test_invalid.py; here every case
also has to name a fix, finish in bounded CPU, and provision nothing through the real CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelops.components import naming
from modelops.spec.envs import validate
from modelops.errors import SpecError
from modelops.spec.loader import MAX_BYTES, load_yaml
from tests.helpers import ROOT
from tests.spec.helpers import INVALID, expected_lines, invalid_cases, invalid_spec

CASES = invalid_cases()
#: a few invalid specs of different classes fed to `up` against a live server
UP_CASES = ["yaml-bad-indentation", "dangling-notify", "alias-bomb", "overlay-unknown-key", "circular-model-on-model"]
#: every class of mistake the brief names, each with at least one corpus case
CLASSES = {
    "yaml syntax": "yaml-unclosed-flow",
    "duplicate keys": "duplicate-key-nested",
    "duplicate merge keys": "duplicate-merge-key",
    "train column not in the CSV header": "train-column-typo",
    "wrong types": "wrong-type-instance-count",
    "unknown keys": "unknown-key-serving",
    "missing required": "missing-train-target",
    "dangling reference": "dangling-monitor-model",
    "circular reference (monitor on a monitor)": "circular-monitor-on-monitor",
    "circular reference (model on a model)": "circular-model-on-model",
    "duplicate names": "duplicate-name-across-kinds",
    "environment name too long": "overlay-env-name-too-long",
    "bad duration": "bad-duration",
    "bad threshold (nan)": "threshold-nan",
    "bad threshold (inf)": "threshold-inf",
    "overlay unknown key": "overlay-unknown-top-key",
    "overlay wrong type": "overlay-wrong-type",
    "alias bomb": "alias-bomb",
    "overlay alias bomb": "overlay-alias-bomb",
    "too deep": "too-deep",
    "binary": "binary-file",
    "non-utf-8": "non-utf8",
    "directory as spec": "spec-is-directory",
    "empty": "empty-file",
}


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("MODELOPS_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_every_class_of_mistake_has_a_corpus_case():
    missing = {label: name for label, name in CLASSES.items() if name not in CASES}
    assert not missing


@pytest.mark.parametrize("name", CASES)
def test_every_problem_names_place_path_and_fix(name, monkeypatch):
    monkeypatch.chdir(INVALID)
    problems = validate(invalid_spec(name))
    assert problems
    for problem in problems:
        assert problem.file and problem.line >= 1 and problem.column >= 1
        assert problem.fix, str(problem)
        # a problem inside the document names its spec path; a whole-file one (syntax, bytes) may not
        assert problem.path or problem.code.startswith(
            ("E-YAML", "E-BINARY", "E-ENCODING", "E-EMPTY", "E-ALIAS", "E-TOO-", "E-NOT-A-FILE", "E-TOP-LEVEL",
             "E-ENV-NAME")
        ), str(problem)


@pytest.mark.parametrize("name", CASES)
def test_each_case_takes_under_a_second_of_cpu(name, monkeypatch):
    # a bound on pathological inputs (alias bombs, deep nesting), not a speed target
    monkeypatch.chdir(INVALID)
    started = time.process_time()
    problems = validate(invalid_spec(name))
    spent = time.process_time() - started
    assert problems
    assert spent < 1.0, f"{name}: {spent:.2f}s of CPU"


def test_an_unreadable_path_is_a_problem_not_a_traceback(tmp_path):
    # GIVEN a "spec" below a regular file (ENOTDIR: unreadable even for root, unlike chmod 000)
    blocker = tmp_path / "modelops.yaml"
    blocker.write_text("apiVersion: modelops/v1\n")
    with pytest.raises(SpecError) as raised:
        load_yaml(blocker / "modelops.yaml")
    [problem] = raised.value.problems
    assert problem.code in ("E-UNREADABLE", "E-NOT-FOUND") and problem.fix
    # AND the CLI says so in one line, exit 2
    result = _cli("validate", str(blocker / "modelops.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_very_large_file_is_refused_before_it_is_read(tmp_path):
    # GIVEN a sparse file one byte over the limit (no 8 MiB written to disk)
    big = tmp_path / "modelops.yaml"
    with open(big, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)
    started = time.process_time()
    with pytest.raises(SpecError, match=r"larger than the 8,388,608-byte limit"):
        load_yaml(big)
    assert time.process_time() - started < 1.0
    # AND a 1 MiB file of 50,000 tags is answered with problems (not a hang, not a crash)
    big.write_text("apiVersion: modelops/v1\ntags:\n" + "".join(f"  k{i:014d}: v\n" for i in range(50_000)))
    started = time.process_time()
    problems = validate(big)
    assert problems and all(p.fix for p in problems if p.code != "E-SCHEMA-TYPE")
    assert time.process_time() - started < 20.0


def test_a_name_valid_in_one_environment_fits_every_environment():
    # The per-environment AWS limit cannot be exceeded: project <= 16, environment <= 10 and
    # names <= 20 characters are enforced by the schema, and the longest derived names fit.
    longest = naming.longest_names("p" * 16, "e" * 10, "n" * 20)
    assert {role: len(name) <= limit for role, (name, limit) in longest.items()} == dict.fromkeys(longest, True)
    # AND the closest mistakes are refused: an 11-character environment, a 17-character project
    assert expected_lines("overlay-env-name-too-long")[0].endswith("rename the overlay file, e.g. stacks/prod.yaml")
    assert "at most 16 allowed" in expected_lines("project-too-long")[0]
    assert naming.ENV_PATTERN.match("e" * 10) and not naming.ENV_PATTERN.match("e" * 11)


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _everything(url: str) -> dict[str, list]:
    def client(service):
        return boto3.client(service, endpoint_url=url, region_name="eu-west-1")

    return {
        "buckets": client("s3").list_buckets()["Buckets"],
        "roles": client("iam").list_roles()["Roles"],
        "topics": client("sns").list_topics()["Topics"],
        "keys": client("kms").list_keys()["Keys"],
        "models": client("sagemaker").list_models()["Models"],
        "alarms": client("cloudwatch").describe_alarms()["MetricAlarms"],
    }


@pytest.mark.aws
@pytest.mark.parametrize("name", UP_CASES)
def test_up_on_an_invalid_spec_exits_2_and_provisions_nothing(name, moto_url, tmp_path):
    # GIVEN an invalid spec and a live server
    spec = invalid_spec(name)
    env_name = "prod" if name.startswith("overlay") else "dev"
    # WHEN a user runs up against it
    result = _cli("up", spec, "--env", env_name, "--endpoint-url", moto_url, cwd=INVALID)
    # THEN exit 2 with the same one-line problems as validate, no traceback
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
    assert lines and set(lines) <= set(expected_lines(name)), lines
    # AND nothing exists on the server, and no state was written
    assert _everything(moto_url) == {k: [] for k in ("buckets", "roles", "topics", "keys", "models", "alarms")}
    assert not (INVALID / ".modelops").exists()
    assert not list((INVALID / name).glob(".modelops")) if (INVALID / name).is_dir() else True


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_yaml(tmp_path / "absent.yaml")


def test_a_fifo_given_as_the_spec_is_refused_not_waited_on(tmp_path):
    # GIVEN a named pipe with no writer as the spec (`modelops validate <(...)`-style mistakes)
    fifo = tmp_path / "modelops.yaml"
    os.mkfifo(fifo)
    # WHEN validated (in a subprocess: a hang must not hang the suite)
    try:
        result = _cli("validate", str(fifo), cwd=tmp_path, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("validate waited on the FIFO for 10 s")
    # THEN one line, exit 2
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a regular file" in result.stderr and "save the spec to a file" in result.stderr


# ------------------------------------------------------------------ every string field of the schema

FULL = ROOT / "tests" / "fixtures" / "specs" / "valid" / "full"
#: text no spec string may hold: Python's `$` passed the first before names were anchored with \Z
BAD_TEXT = {"trailing-newline": "{}\n", "leading-space": " {}", "nul": "{}\x00x"}


def _resolve_ref(node: dict, definition: dict) -> dict:
    while "$ref" in node:
        target = definition["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _string_fields(node: dict, definition: dict, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Every place of the schema that holds text, as (path template, "value" or "key");
    "*" stands for any key of a mapping, 0 for any item of a list."""
    node = _resolve_ref(node, definition)
    found = []
    types = node.get("type", [])
    types = types if isinstance(types, list) else [types]
    if "string" in types or isinstance(node.get("const"), str) or any(isinstance(o, str) for o in node.get("enum", [])):
        found.append((path, "value"))
    for key, child in node.get("properties", {}).items():
        found += _string_fields(child, definition, (*path, key))
    if isinstance(node.get("additionalProperties"), dict):
        found += _string_fields(node["additionalProperties"], definition, (*path, "*"))
    if "propertyNames" in node:
        found.append(((*path, "*"), "key"))
    if isinstance(node.get("items"), dict):
        found += _string_fields(node["items"], definition, (*path, 0))
    return found


def _holds(data, rest: tuple) -> bool:
    if not rest:
        return True
    head, *tail = rest
    if head == "*":
        return isinstance(data, dict) and any(_holds(v, tuple(tail)) for v in data.values())
    if head == 0:
        return isinstance(data, list) and bool(data) and _holds(data[0], tuple(tail))
    return isinstance(data, dict) and head in data and _holds(data[head], tuple(tail))


def _place(data: dict, template: tuple, kind: str, bad: str) -> tuple:
    """Put ``bad`` at ``template`` in ``data`` (in place); the concrete path it now has."""
    node, concrete = data, []
    for index, part in enumerate(template):
        last = index == len(template) - 1
        if part == "*":
            keys = [k for k, v in node.items() if _holds(v, template[index + 1 :])] or list(node) or ["x"]
            part = keys[0]
            if last and kind == "key":
                bad_key = bad.format(part)
                node[bad_key] = node.pop(part)
                return (*concrete, bad_key)
        if last:
            if isinstance(node, list) and not node:
                node.append("x")  # an empty list (`include: []`): the bad text is its first item
            node[part] = bad.format(node.get(part, "x") if isinstance(node, dict) else node[part])
            return (*concrete, part)
        if part == 0:
            if not node:
                node.append({})
        elif part not in node or not isinstance(node[part], (dict, list)):
            node[part] = [] if template[index + 1] == 0 else {}
        node, concrete = node[part], [*concrete, part]
    raise AssertionError(template)


def _full_data() -> dict:
    import yaml

    return yaml.safe_load((FULL / "modelops.yaml").read_text(encoding="utf-8"))


def _string_cases() -> list[tuple[tuple, str, str]]:
    from modelops.spec.schema import schema

    fields = _string_fields(schema(), schema())
    return [(template, kind, variant) for template, kind in fields for variant in BAD_TEXT]


def test_the_schema_walk_finds_every_kind_of_string():
    # GIVEN the walk of the schema THEN it reaches names, keys, paths, texts, patterns and enums
    templates = {(t, k) for t, k, _ in _string_cases()}
    for expected in [(("project",), "value"), (("datasets", "*"), "key"), (("datasets", "*", "source"), "value"),
                     (("models", "*", "train", "features", 0), "value"), (("tags", "*"), "key"),
                     (("tags", "*"), "value"), (("notifications", "*", "https", 0), "value"),
                     (("region",), "value"), (("monitors", "*", "above"), "value")]:
        assert expected in templates
    assert len(templates) >= 40


@pytest.mark.parametrize(("template", "kind", "variant"), _string_cases(),
                         ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_every_string_field_refuses_a_newline_edge_space_and_nul(template, kind, variant, tmp_path):
    import shutil

    import yaml

    from modelops.spec.problems import dotted

    # GIVEN the full valid spec (with its data files) and one string of it made bad
    project = tmp_path / "full"
    shutil.copytree(FULL, project)
    data = _full_data()
    concrete = _place(data, template, kind, BAD_TEXT[variant])
    (project / "modelops.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # WHEN validated THEN a problem at exactly that path, each problem one line with a fix
    problems = validate(project / "modelops.yaml")
    at_path = [p for p in problems if p.path == dotted(concrete)]
    assert at_path, (dotted(concrete), [str(p) for p in problems])
    assert all(p.fix and p.line >= 1 for p in at_path)
    assert all("\n" not in str(p) and "\x00" not in str(p) for p in problems)


@pytest.mark.parametrize("variant", list(BAD_TEXT))
def test_the_cli_exits_2_on_every_bad_string_at_once(variant, tmp_path):
    import shutil

    import yaml

    # GIVEN the full spec with every string field of the schema made bad at once
    project = tmp_path / "full"
    shutil.copytree(FULL, project)
    data = _full_data()
    for template, kind, case in _string_cases():
        if case == variant and kind == "value":
            _place(data, template, kind, BAD_TEXT[variant])
    (project / "modelops.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # WHEN validate runs as a user runs it THEN exit 2, one-line problems, no traceback
    result = _cli("validate", "modelops.yaml", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) >= 20 and all(line.startswith("modelops.yaml:") for line in lines), lines


def test_two_merge_keys_are_a_duplicate_key_like_any_other(tmp_path):
    # GIVEN one mapping with two `<<` keys (the last used to win silently) and one with a plain duplicate
    spec = tmp_path / "modelops.yaml"
    spec.write_text("a: &a {x: 1}\nb: &b {x: 2}\nc:\n  <<: *a\n  <<: *b\nd:\n  y: 1\n  y: 2\n", encoding="utf-8")
    # WHEN loaded THEN both are the same error, each at the repeated key with the first one's position
    with pytest.raises(SpecError) as raised:
        load_yaml(spec)
    merge, plain = raised.value.problems
    assert (merge.code, merge.line, merge.column, merge.path) == ("E-DUPLICATE-KEY", 5, 3, "c.<<")
    assert (plain.code, plain.line, plain.column, plain.path) == ("E-DUPLICATE-KEY", 8, 3, "d.y")
    assert merge.message == "duplicate key (first defined at line 4, column 3)"
    assert plain.message == "duplicate key (first defined at line 7, column 3)"
    assert "<<: [*first, *second]" in merge.fix
    # AND one `<<` with a list of anchors still merges, the first anchor winning as YAML says
    spec.write_text("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nc:\n  <<: [*a, *b]\n", encoding="utf-8")
    assert load_yaml(spec).data["c"] == {"x": 1, "z": 3}


# ------------------------------------------------------------------ files a spec names stay in the project

SECRET = "hunter2-do-not-print"
SPEC_HEAD = "apiVersion: modelops/v1\nproject: demo\nowner: team@example.com\nregion: eu-west-1\n"


def _escaping_project(tmp_path: Path) -> Path:
    """A project whose spec names files outside it in every way a path can escape."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET},b\n1,2\n", encoding="utf-8")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "link.csv").symlink_to(outside / "secret.csv")
    (project / "data" / "ok.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (project / "data" / "inner.csv").symlink_to(project / "data" / "ok.csv")
    (project / "data" / "dir.csv").mkdir()
    (project / "modelops.yaml").write_text(
        SPEC_HEAD + "datasets:\n"
        "  dotdot:\n    source: ../outside/secret.csv\n"           # line 7
        "  absolute:\n    source: /proc/self/environ\n"             # line 9
        "  symlink:\n    source: data/link.csv\n"                   # line 11
        "  directory:\n    source: data/dir.csv\n"                  # line 13
        "  inside:\n    source: data/inner.csv\n"                   # line 15: a symlink within: fine
        "models:\n  packaged:\n    dataset: inside\n    artifact: ../outside/secret.csv\n",  # line 19
        encoding="utf-8",
    )
    return project


def test_a_file_named_outside_the_project_is_refused_at_its_position(tmp_path):
    project = _escaping_project(tmp_path)
    # WHEN validated as a user does, with a secret in the environment
    result = subprocess.run([sys.executable, "-m", "modelops", "validate"], cwd=project, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "MODELOPS_TEST_SECRET": SECRET}, check=False)
    # THEN exit 2, one problem per escaping path at its value, and nothing of the files is shown
    assert result.returncode == 2, result.stderr
    assert SECRET not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "modelops.yaml:7:13: datasets.dotdot.source: '../outside/secret.csv' resolves outside the project "
        "(the current directory); keep the file in the spec's directory or below it (a symlink must point there too)",
        "modelops.yaml:9:13: datasets.absolute.source: '/proc/self/environ' is an absolute path; "
        "write it relative to the current directory, inside the project",
        "modelops.yaml:11:13: datasets.symlink.source: 'data/link.csv' resolves outside the project "
        "(the current directory); keep the file in the spec's directory or below it (a symlink must point there too)",
        "modelops.yaml:13:13: datasets.directory.source: 'data/dir.csv' is not a regular file (a directory, pipe or "
        "device); point it at a data file",
        "modelops.yaml:19:15: models.packaged.artifact: '../outside/secret.csv' resolves outside the project "
        "(the current directory); keep the file in the spec's directory or below it (a symlink must point there too)",
    ]


@pytest.mark.aws
def test_up_uploads_nothing_from_outside_the_project(tmp_path, moto_url):
    # GIVEN the escaping project WHEN up runs against a live server
    project = _escaping_project(tmp_path)
    result = _cli("up", "--env", "dev", "--endpoint-url", moto_url, cwd=project)
    # THEN exit 2 before anything is provisioned, and the secret is nowhere
    assert result.returncode == 2, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert _everything(moto_url) == {k: [] for k in ("buckets", "roles", "topics", "keys", "models", "alarms")}


def test_a_csv_header_is_quoted_bounded_and_escaped(tmp_path):
    # GIVEN a source whose header is one 60,000-character "column" starting with a secret
    (tmp_path / "data.csv").write_text(SECRET + "x" * 60_000 + "\n1\n", encoding="utf-8")
    (tmp_path / "modelops.yaml").write_text(SPEC_HEAD + "datasets:\n  raw:\n    source: data.csv\n", encoding="utf-8")
    # WHEN validated THEN the problem quotes at most 40 escaped characters of it
    [problem] = validate(tmp_path / "modelops.yaml")
    assert problem.code == "E-CSV-COLUMN"
    assert len(problem.message) < 120 and "x" * 41 not in str(problem)


def test_an_overlay_symlinked_out_of_the_project_is_not_read(tmp_path):
    # GIVEN stacks/prod.yaml a symlink to a file outside the project, stacks/dev.yaml one inside
    (tmp_path / "outside.yaml").write_text(f"{SECRET}: [\n", encoding="utf-8")
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    (project / "modelops.yaml").write_text(SPEC_HEAD, encoding="utf-8")
    (project / "stacks" / "prod.yaml").symlink_to(tmp_path / "outside.yaml")
    (project / "stacks" / "shared.yaml").write_text("protect: true\n", encoding="utf-8")
    (project / "stacks" / "dev.yaml").symlink_to(project / "stacks" / "shared.yaml")
    # WHEN validated THEN prod is refused without a word of its target; dev is fine
    [problem] = validate(project / "modelops.yaml")
    assert (problem.code, problem.file.endswith("stacks/prod.yaml")) == ("E-FILE-OUTSIDE", True)
    assert problem.message == "resolves outside the project" and SECRET not in str(problem)



# ------------------------------------------------------------------ data files are read bounded, once

def _peak_bytes(call) -> tuple[object, int]:
    import tracemalloc

    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_header_line_is_refused_reading_a_bounded_prefix(tmp_path):
    from modelops.spec.datafiles import MAX_HEADER_BYTES

    # GIVEN a 64 MiB sparse file (no line break anywhere) as a CSV source
    with open(tmp_path / "data.csv", "wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    (tmp_path / "modelops.yaml").write_text(SPEC_HEAD + "datasets:\n  raw:\n    source: data.csv\n", encoding="utf-8")
    # WHEN validated THEN one problem naming the limit, and about a MiB read, not the file
    problems, peak = _peak_bytes(lambda: validate(tmp_path / "modelops.yaml"))
    [problem] = problems
    assert problem.code == "E-CSV-HEADER" and f"{MAX_HEADER_BYTES:,}-byte limit" in problem.message
    assert (problem.line, problem.column, problem.path) == (7, 13, "datasets.raw.source")
    assert peak < 8 * 1024 * 1024, peak


def test_sample_rows_are_read_from_a_bounded_prefix(tmp_path):
    from modelops.spec.envs import load_environment

    # GIVEN a CSV with a valid header, two rows, then a 64 MiB line
    with open(tmp_path / "data.csv", "wb") as handle:
        handle.write(b"a,b\n1,x\n2,y\n")
        handle.write(b"3" * (64 * 1024 * 1024) + b",z\n")
    (tmp_path / "modelops.yaml").write_text(SPEC_HEAD + "datasets:\n  raw:\n    source: data.csv\n", encoding="utf-8")
    # WHEN resolved THEN the columns are typed from the rows within the prefix, in bounded memory
    env, peak = _peak_bytes(lambda: load_environment(tmp_path / "modelops.yaml", "dev"))
    assert env.datasets["raw"].columns == (("a", "bigint"), ("b", "string"))
    assert peak < 8 * 1024 * 1024, peak


def _bomb(path: Path, member: str, size: int) -> None:
    """A gzipped tar whose ``member`` inflates to ``size`` zero bytes (a few KB on disk per 1 MiB... less)."""
    import gzip
    import tarfile

    class Zeros:
        def __init__(self, left: int) -> None:
            self.left = left

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return bytes(n)

    with gzip.open(path, "wb", compresslevel=9) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(member)
        info.size = size
        tar.addfile(info, Zeros(size))


def test_a_gzip_bomb_artifact_is_refused_naming_the_limit(tmp_path):
    from modelops.ml.artifacts import attach_artifacts
    from modelops.spec.envs import load_environment
    from modelops.errors import UsageError
    from modelops.ml.package import MAX_MEMBER_BYTES

    # GIVEN an artifact whose card.json inflates to 64 MiB (about 64 KB on disk)
    _bomb(tmp_path / "model.tar.gz", "card.json", 64 * 1024 * 1024)
    assert (tmp_path / "model.tar.gz").stat().st_size < 200_000
    (tmp_path / "modelops.yaml").write_text(
        SPEC_HEAD + "datasets:\n  raw: {}\nmodels:\n  mm:\n    dataset: raw\n    artifact: model.tar.gz\n", encoding="utf-8")
    env = load_environment(tmp_path / "modelops.yaml", "dev")
    # WHEN the artifact is added to the store THEN refused with the limit, nothing inflated into the store
    def attach():
        with pytest.raises(UsageError) as raised:
            attach_artifacts(env, root=tmp_path)
        return raised.value

    error, peak = _peak_bytes(attach)
    assert str(error).startswith("models.mm.artifact: ") and f"{MAX_MEMBER_BYTES:,}-byte limit" in str(error)
    assert peak < 8 * 1024 * 1024, peak
    assert not list((tmp_path / ".modelops").rglob("card.json"))


def test_a_data_file_is_read_once_per_process_whatever_the_environments(tmp_path):
    from modelops.spec.envs import check

    # GIVEN three environments and two datasets on one CSV file, trained on
    (tmp_path / "stacks").mkdir()
    for env in ("dev", "staging", "prod"):
        (tmp_path / "stacks" / f"{env}.yaml").write_text("{}\n", encoding="utf-8")
    (tmp_path / "data.csv").write_text("a,b,y\n1,2,0\n3,4,1\n", encoding="utf-8")
    (tmp_path / "modelops.yaml").write_text(
        SPEC_HEAD + "datasets:\n  one:\n    source: data.csv\n  two:\n    source: data.csv\n"
        "models:\n  mm:\n    dataset: one\n    train: {estimator: sklearn.linear_model.LogisticRegression, target: y}\n",
        encoding="utf-8")
    data = str((tmp_path / "data.csv").resolve())
    opened: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "open" and str(args[0]) == data:
            opened.append(event)

    sys.addaudithook(hook)  # (hooks cannot be removed; this one only counts opens of this file)
    # WHEN every environment is validated and resolved
    problems, resolved = check(tmp_path / "modelops.yaml")
    assert not problems and set(resolved) == {"dev", "staging", "prod"}
    # THEN the file was opened once, for its bounded sample
    assert len(opened) == 1, opened
    # AND its content digest, read by every environment's datasets, opens it once more
    digests = {env.datasets[name].source_digest for env in resolved.values() for name in ("one", "two")}
    assert len(digests) == 1 and len(opened) == 2, opened
    assert resolved["prod"].datasets["two"].columns == (("a", "bigint"), ("b", "bigint"), ("y", "bigint"))
