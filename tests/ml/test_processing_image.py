"""The monitor job against its processing image: what the script imports, and where the
libraries it is tested with here differ from the pinned image's (docs/monitoring.md).

The image is never pulled here (no registry but PyPI, Debian and npm is reachable): its
versions are the table in ``components/serving_images.py``, and these tests keep the script
and the doc honest about it.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from modelops.components.serving_images import PROCESSING_FRAMEWORK, PROCESSING_IMPORTS, PROCESSING_LIBRARIES
from modelops.ml import monitor_job
from tests.helpers import ROOT

SCRIPT = Path(monitor_job.__file__)
DOC = ROOT / "docs" / "monitoring.md"
TABLE_START = "<!-- processing-image-versions: start -->"
TABLE_END = "<!-- processing-image-versions: end -->"


def _imported_modules(source: str) -> set[str]:
    """Top-level module names the script imports anywhere (functions included)."""
    # the older of the image's Python and ours: the script runs on both
    tree = ast.parse(source, feature_version=min(_version(PROCESSING_LIBRARIES["python"]), sys.version_info[:2]))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return names


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _distributions(modules: set[str]) -> set[str]:
    return {PROCESSING_IMPORTS.get(m, m) for m in modules if m not in sys.stdlib_module_names}


def _installed(distribution: str) -> str:
    if distribution == "python":
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _table() -> str:
    """The doc's table: every library of the image, its version there and here."""
    used = _distributions(_imported_modules(SCRIPT.read_text(encoding="utf-8"))) | {"python"}
    lines = [f"| library | image `{PROCESSING_FRAMEWORK}` | tested here | the job uses it | |",
             "| --- | --- | --- | --- | --- |"]
    for name, version in PROCESSING_LIBRARIES.items():
        here = _installed(name)
        same = "same" if here == version else ("—" if here == "not installed" else "differs")
        uses = "yes" if name in used else ("through boto3" if name == "botocore" and "boto3" in used else "no")
        lines.append(f"| {name} | {version} | {here} | {uses} | {same} |")
    return "\n".join(lines)


def test_the_script_imports_only_the_standard_library_and_the_images_libraries() -> None:
    # GIVEN the job script as it ships
    modules = _imported_modules(SCRIPT.read_text(encoding="utf-8"))
    # WHEN its imports are sorted into the standard library and the rest
    third_party = _distributions(modules)
    # THEN everything else is a library of the pinned processing image: nothing to install at run time
    assert third_party <= set(PROCESSING_LIBRARIES) - {"python"}, third_party - set(PROCESSING_LIBRARIES)
    # and the ones it does use (the doc names them) are these
    assert third_party == {"numpy", "scipy", "boto3"}


def test_an_import_outside_the_image_would_be_caught() -> None:
    # the check above on a script that imports matplotlib (not in the image) and a stdlib module
    third_party = _distributions(_imported_modules("import json\nfrom matplotlib import pyplot\n"))
    assert third_party - set(PROCESSING_LIBRARIES) == {"matplotlib"}


def test_the_doc_states_the_images_versions_against_the_ones_tested_here() -> None:
    # GIVEN the versions installed in this venv and the pinned image's
    expected = _table()
    # WHEN the doc's table is read
    text = DOC.read_text(encoding="utf-8")
    match = re.search(re.escape(TABLE_START) + r"\n(.*?)\n" + re.escape(TABLE_END), text, re.S)
    assert match, f"docs/monitoring.md lacks the {TABLE_START} ... {TABLE_END} table"
    # THEN it says exactly what differs (regenerate it from the message when a version moves)
    assert match.group(1) == expected, f"docs/monitoring.md's image table is stale; it should be:\n{expected}"
