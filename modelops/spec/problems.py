"""Problems at ``FILE:LINE:COL``: where a spec path is written, and the helpers every rule uses.

A :class:`Locator` finds the position of a spec path in a layered document (an overlay over
its base); :func:`at` and :func:`clash` make the one-line :class:`~modelops.errors.Problem`
that the schema checks (:mod:`modelops.spec.schema_errors`) and the semantic rules
(:mod:`modelops.spec.semantics`) report.

Example::

    at("E-REF", where.value(path), path, "unknown dataset 'x'", "did you mean 'customers'?")
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from modelops.errors import Problem
from modelops.spec.loader import LoadedDocument

__all__ = ["Locator", "at", "choices", "clash", "dotted", "entities", "is_true", "mapping", "suggest", "whole"]


def dotted(path: Iterable[Any]) -> str:
    """``("models", "churn", "train", "features", 0)`` → ``models.churn.train.features[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (did-you-mean), or None."""
    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return found[0] if found else None


class Locator:
    """Positions in a layered document: the first document that has a path wins.

    For a merged environment the layers are ``[overlay, base]``: a value the overlay sets
    is reported in the overlay, everything else in the base.
    """

    def __init__(self, docs: list[LoadedDocument]) -> None:
        self.docs = docs

    def key(self, path: Iterable[Any]) -> tuple[str, int, int]:
        """Where the key of ``path`` is written (or its nearest written ancestor)."""
        path = tuple(path)
        while True:
            for doc in self.docs:
                found = doc.positions.get(path)
                if found is not None:
                    return doc.file, found[0], found[1]
            if not path:
                return self.docs[-1].file, 1, 1
            path = path[:-1]

    def value(self, path: Iterable[Any]) -> tuple[str, int, int]:
        """Where the value of ``path`` is written (falls back to :meth:`key`)."""
        path = tuple(path)
        for doc in self.docs:
            found = doc.value_positions.get(path)
            if found is not None:
                return doc.file, found[0], found[1]
        return self.key(path)

    def file_of(self, path: Iterable[Any]) -> str:
        return self.key(path)[0]

    def layer(self, path: Iterable[Any]) -> int | None:
        """The index of the layer that writes the key of ``path`` itself (0: the overlay), or None."""
        path = tuple(path)
        for index, doc in enumerate(self.docs):
            if path in doc.positions:
                return index
        return None


def at(code: str, where: tuple[str, int, int], path: Iterable[Any], message: str, fix: str = "") -> Problem:
    return Problem(code, where[0], where[1], where[2], dotted(path), message, fix)


def clash(code: str, where: Locator, first: tuple[Any, ...], second: tuple[Any, ...], message: str, fix: str,
           path: tuple[Any, ...] | None = None, value: bool = False) -> Problem:
    """Two keys that cannot be set together, reported once: at ``second``, unless the overlay
    wrote ``first`` over a base that has ``second`` (then the overlay caused it). When the two
    are in different files, the other one's place is named; an overlay cannot remove a key
    of the base, so the fix says what can be done instead."""
    first_layer, second_layer = where.layer(first), where.layer(second)
    here, other = (first, second) if first_layer is not None and second_layer is not None and first_layer < second_layer else (second, first)
    spot, there = (where.value(here) if value else where.key(here)), where.key(other)
    if spot[0] != there[0]:
        message = f"{message}: `{other[-1]}` is set at {there[0]}:{there[1]}:{there[2]}"
        if where.layer(here) == 0:
            fix = f"remove `{here[-1]}` here (an overlay cannot remove `{other[-1]}` of {there[0]}: move it from there into the overlays that keep it)"
    return at(code, spot, here if path is None else path, message, fix)


def choices(options: list[Any], limit: int = 8) -> str:
    """``options`` as a short list for a fix (``a, b, c, ... (12 in all)``)."""
    shown = ", ".join(str(o) for o in options[:limit])
    return shown + (f", ... ({len(options)} in all)" if len(options) > limit else "")


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one (rules skip shapes the schema reports)."""
    return value if isinstance(value, dict) else {}


def entities(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in mapping(data.get(kind)).items() if isinstance(body, dict)}


def is_true(value: Any) -> bool:
    return value is True


def whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
