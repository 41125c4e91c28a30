"""Package a trained model as a reproducible, content-addressed ``model.tar.gz``.

Layout (what the SageMaker scikit-learn image extracts to ``/opt/ml/model``)::

    model.joblib        the fitted pipeline
    code/inference.py   model_fn / input_fn / predict_fn / output_fn
    baseline.json       per-feature training distribution (drift)
    card.json           model card: metrics, dataset digest, params, versions

Same inputs, same bytes: entries sorted, mtime/uid/gid zeroed, fixed modes, gzip header
mtime 0 and no file name, JSON with sorted keys. The digest is ``sha256:`` of those bytes.

Example::

    data = package_bytes(result)
    digest_of(data)     # 'sha256:…'
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import UsageError

if TYPE_CHECKING:  # reading and hashing packages (plan, diff, up) needs no numpy or scikit-learn
    from modelops.ml.build import TrainResult

INFERENCE_SOURCE = Path(__file__).with_name("inference.py")


def canonical_json(data: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, fixed separators, trailing newline)."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def pipeline_bytes(pipeline: Any) -> bytes:
    """The pipeline as a plain pickle (protocol 4), which ``joblib.load`` reads.

    Not ``joblib.dump``: its bytes for object arrays (the one-hot categories) depend on
    what else the process has imported, which would break same-inputs-same-digest.
    """
    return pickle.dumps(pipeline, protocol=4)


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzip'd tar of ``files`` (name -> bytes) that depends only on its contents."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = sorted({str(Path(name).parent) for name in files if "/" in name})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            _zero(info)
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            _zero(info)
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _zero(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""


def package_files(result: TrainResult) -> dict[str, bytes]:
    return {
        "model.joblib": pipeline_bytes(result.pipeline),
        "code/inference.py": INFERENCE_SOURCE.read_bytes(),
        "baseline.json": canonical_json(result.baseline),
        "card.json": canonical_json(result.card),
    }


def package_bytes(result: TrainResult) -> bytes:
    """The ``model.tar.gz`` bytes of a trained model."""
    return tar_gz(package_files(result))


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


#: what reading a package inflates at most: one JSON member (card, baseline), all members
#: walked past to find it, and how many there are (a 1.5 MB gzip can inflate to 1.5 GB)
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_INFLATED_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 10_000


def read_member(path: str | Path, name: str) -> bytes | None:
    """One file of a package (``card.json``, ``baseline.json``), or None when absent.

    Bounded: a :class:`~modelops.errors.UsageError` names the limit a package exceeds
    (:data:`MAX_MEMBER_BYTES`, :data:`MAX_INFLATED_BYTES`, :data:`MAX_MEMBERS`) before
    more than that is inflated.
    """
    wanted = {name, f"./{name}"}
    with tarfile.open(path, mode="r:gz") as tar:  # not "r|gz": its stream inflates 10 MB at a time
        total = 0
        for count, member in enumerate(tar, start=1):
            # checked before the member's data is inflated, from the sizes its header declares
            total += member.size
            if count > MAX_MEMBERS:
                raise UsageError(f"{path}: the package has more than {MAX_MEMBERS:,} members (the limit)")
            if total > MAX_INFLATED_BYTES:
                raise UsageError(f"{path}: the package inflates to more than {MAX_INFLATED_BYTES:,} bytes (the limit)")
            if member.name not in wanted:
                continue
            if member.size > MAX_MEMBER_BYTES:
                raise UsageError(f"{path}: {name} is {member.size:,} bytes, over the {MAX_MEMBER_BYTES:,}-byte limit of a package's {name}")
            handle = tar.extractfile(member)
            return handle.read(MAX_MEMBER_BYTES) if handle else None
    return None
