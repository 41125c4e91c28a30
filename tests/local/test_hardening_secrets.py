"""No secret escapes: a token in an https subscription URL appears in no command's output
and in no file the tool writes under ``.modelops/`` (the state stores a salted digest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from modelops.ml.artifacts import attach_artifacts
from modelops.graph.cache import RenderCache
from modelops.spec.envs import load_environment
from modelops.local.state import StateStore, to_plain
from tests.helpers import Emulator
from tests.local.helpers import copy_project

pytestmark = [pytest.mark.aws, pytest.mark.slow]

ORIGINAL_URL = "https://hooks.example.com/services/risk-alerts"


def _run(*args: str, cwd: Path, ca_bundle: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("MODELOPS_VERBOSE", None)
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    return subprocess.run([sys.executable, "-m", "modelops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_subscription_token_appears_in_no_output_and_no_state(emulator, artifact_root, tmp_path):
    # GIVEN two copies of fraud; in one the chat webhook carries a unique token
    token = f"tok{uuid.uuid4().hex}"
    original = copy_project("fraud", tmp_path / "original", artifact_root)
    spec = copy_project("fraud", tmp_path / "project", artifact_root)
    text = spec.read_text()
    assert ORIGINAL_URL in text
    spec.write_text(text.replace(ORIGINAL_URL, f"https://hooks.example.com/services/T0/{token}?sig={token}"))
    project = spec.parent
    # WHEN every command that reads the spec runs
    runs = {
        "validate": _run("validate", str(spec), cwd=project),
        "show": _run("show", str(spec), "--env", "prod", cwd=project),
        "show --json": _run("show", str(spec), "--env", "prod", "--json", cwd=project),
        "plan": _run("plan", str(spec), "--env", "prod", cwd=project),
        "plan --json": _run("plan", str(spec), "--env", "prod", "--json", cwd=project),
        "diff": _run("diff", str(spec), "--base", str(original.parent), cwd=project),
        "diff --json": _run("diff", str(spec), "--base", str(original.parent), "--json", cwd=project),
        "security --json": _run("security", str(spec), "--json", cwd=project),
        "up": _run("up", str(spec), "--env", "dev", "--endpoint-url", emulator.url, cwd=project,
                   ca_bundle=emulator.ca_bundle),
        # again, as JSON (prod protects its resources: destroy would refuse it, so dev twice)
        "up --json": _run("up", str(spec), "--env", "dev", "--endpoint-url", emulator.url, "--json",
                          cwd=project, ca_bundle=emulator.ca_bundle),
    }
    # the state of a live environment, while it exists
    state_files = sorted((project / ".modelops" / "state").glob("*.json"))
    state_leaks = _files_holding(project / ".modelops" / "state", token)
    # AND the webhook really was subscribed with its token (the secret reached AWS, only AWS)
    sns = emulator.client("sns", region="us-east-1")
    endpoints = [s["Endpoint"] for s in sns.list_subscriptions()["Subscriptions"]]
    runs["destroy --json"] = _run("destroy", str(spec), "--env", "dev", "--endpoint-url", emulator.url, "--json",
                                  cwd=project, ca_bundle=emulator.ca_bundle)
    # THEN every command succeeded (diff may exit 0: only the URL changed)
    assert {name: r.returncode for name, r in runs.items()} == dict.fromkeys(runs, 0), {
        n: r.stderr[-500:] for n, r in runs.items() if r.returncode}
    # AND the diff did see the change (the token is compared, not dropped)
    assert "risk-chat" in runs["diff"].stdout or "chat" in runs["diff"].stdout
    # AND the token is in no output, no state file, no cache, no log
    leaks = {name: [s for s in ("stdout", "stderr") if token in getattr(r, s)] for name, r in runs.items()}
    assert {name: where for name, where in leaks.items() if where} == {}
    assert state_files, "up wrote no state"
    assert state_leaks == []
    assert _files_holding(project / ".modelops", token) == []
    assert any(token in e for e in endpoints), endpoints


def test_the_render_cache_holds_no_secret(artifact_root, tmp_path):
    token = f"tok{uuid.uuid4().hex}"
    spec = copy_project("fraud", tmp_path / "project", artifact_root)
    spec.write_text(spec.read_text().replace(ORIGINAL_URL, f"https://hooks.example.com/x/{token}"))
    # (validate and security render through the cache; plan does not)
    assert _run("validate", str(spec), cwd=spec.parent).returncode == 0
    assert _files_holding(spec.parent / ".modelops", token) == []
    assert list((spec.parent / ".modelops" / "cache").rglob("*.json")), "validate cached no render"
    # AND a render read back from that cache (a new process: no in-memory copy) holds the real
    # URL again, equal to a render without the cache
    env = attach_artifacts(load_environment(spec, "dev"), build=False, root=spec.parent)
    reader = RenderCache()
    cached = reader.render(env, spec.parent / ".modelops" / "cache")
    assert reader.stats["full"] == 0 and reader.stats["partial"] == 0, reader.stats
    fresh = RenderCache().render(env, None)
    assert [(r.urn, to_plain(r.inputs)) for r in cached.registrations] == \
        [(r.urn, to_plain(r.inputs)) for r in fresh.registrations]
    assert any(token in repr(r.inputs) for r in cached.registrations)


def test_up_again_with_the_same_secret_changes_nothing_and_a_new_secret_replaces(emulator, artifact_root, tmp_path):
    # GIVEN fraud dev up with a token in its webhook
    first, second = f"tok{uuid.uuid4().hex}", f"tok{uuid.uuid4().hex}"
    spec = copy_project("fraud", tmp_path / "project", artifact_root)
    spec.write_text(spec.read_text().replace(ORIGINAL_URL, f"https://hooks.example.com/x/{first}"))
    up = ("up", str(spec), "--env", "dev", "--endpoint-url", emulator.url, "--json")
    assert _run(*up, cwd=spec.parent, ca_bundle=emulator.ca_bundle).returncode == 0
    # WHEN up runs again unchanged THEN nothing changes (the digest matches)
    again = _run(*up, cwd=spec.parent, ca_bundle=emulator.ca_bundle)
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["counts"]) == {"unchanged"}
    # WHEN only the token changes THEN a new subscription replaces the old (its name carries the
    # endpoint's hash): the new secret reaches AWS, the old one is gone
    spec.write_text(spec.read_text().replace(first, second))
    changed = _run(*up, cwd=spec.parent, ca_bundle=emulator.ca_bundle)
    assert changed.returncode == 0, changed.stderr
    counts = json.loads(changed.stdout)["counts"]
    assert counts.get("created") == 1 and counts.get("deleted") == 1, counts
    assert set(counts) == {"created", "deleted", "unchanged"}, counts
    endpoints = [s["Endpoint"] for s in emulator.client("sns", region="us-east-1").list_subscriptions()["Subscriptions"]]
    assert any(second in e for e in endpoints) and not any(first in e for e in endpoints)
    assert _files_holding(spec.parent / ".modelops" / "state", second) == []
    assert _run("destroy", str(spec), "--env", "dev", "--endpoint-url", emulator.url, cwd=spec.parent,
                ca_bundle=emulator.ca_bundle).returncode == 0


def test_state_digests_are_salted_per_state_directory(tmp_path):
    # GIVEN two state directories WHEN the same subscription inputs are made plain in each
    inputs = {"protocol": "https", "endpoint": "https://hooks.example.com/x/tok123", "topic": "arn:aws:sns:::t"}
    digests = []
    for name in ("a", "b"):
        with StateStore.open(tmp_path / name, "p", "dev"):
            digests.append(to_plain(inputs)["endpoint"])
            assert to_plain(inputs) == to_plain(inputs)  # stable within a store: changes are detected
    # THEN the secret is not stored, and equal secrets look different in different projects
    assert all("tok123" not in json.dumps(d) and d.startswith("secret:hmac-sha256:") for d in digests)
    assert digests[0] != digests[1]


#: every form of webhook URL the schema accepts, each hiding the token in another part
URL_FORMS = [
    "https://hooks.example.com/services/T0/{token}",
    "https://hooks.example.com:8443/services/{token}?sig={token}",
    "https://localhost:{token}@hooks.example.com/services/x",
    "https://{token}@hooks.example.com/services/x",
    "https://hooks.example.com/services/x#{token}",
]


@pytest.mark.parametrize("form", URL_FORMS)
def test_every_accepted_url_form_is_masked_in_output_and_absent_from_the_cache(artifact_root, tmp_path, form):
    # GIVEN fraud whose chat webhook is one accepted URL form carrying a unique token
    token = f"tok{uuid.uuid4().hex}"
    spec = copy_project("fraud", tmp_path / "project", artifact_root)
    spec.write_text(spec.read_text().replace(ORIGINAL_URL, form.format(token=token)))
    project = spec.parent
    # WHEN the spec is validated (the policy check writes the render cache) and planned
    runs = [_run("validate", str(spec), cwd=project), _run("plan", str(spec), "--env", "prod", "--json", cwd=project),
            _run("show", str(spec), "--env", "prod", cwd=project)]
    # THEN each run succeeds, prints no token, and no file under .modelops holds it
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert token not in run.stdout + run.stderr
    assert list((project / ".modelops" / "cache").rglob("*.json")), "validate cached no render"
    assert _files_holding(project / ".modelops", token) == []
