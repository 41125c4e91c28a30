"""One registered resource as plain data: what a render produces, the render cache keeps and
the policies read.

Kept apart from :mod:`modelops.graph.runtime` (which runs programs under the Pulumi SDK) so
that what only reads registrations (the policies, the findings kept from the last check)
loads without the SDK.

Example::

    Registration("urn:pulumi:dev::p::aws:s3/bucket:Bucket::b", "aws:s3/bucket:Bucket", "b", True, {})
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["REGISTRATION_FIELDS", "Registration"]


@dataclass
class Registration:
    """One resource the program registered, with what the engine would know of it."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        """The field values in order, ``Registration(*row)`` gives it back: pickled and read
        back about six times faster than the object (the render cache, parallel renders)."""
        return tuple(getattr(self, name) for name in REGISTRATION_FIELDS)


REGISTRATION_FIELDS = tuple(f.name for f in fields(Registration))
