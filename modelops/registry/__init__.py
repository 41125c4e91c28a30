"""The project's model registry: publish versions, look them up, fetch pinned ones (see docs/registry.md)."""

from modelops.registry.listing import Listing, list_versions
from modelops.registry.pins import Fetched, fetch_pins, missing_pins, pins
from modelops.registry.publish import PublishOutcome, publish, publish_all, publish_served
from modelops.registry.store import Registry

__all__ = ["Fetched", "Listing", "PublishOutcome", "Registry", "fetch_pins", "list_versions", "missing_pins",
           "pins", "publish", "publish_all", "publish_served"]
