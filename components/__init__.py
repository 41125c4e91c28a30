"""Pulumi ComponentResources: one per spec kind, and the one that assembles an environment.

Import the module you need (``from modelops.components.environment import program``); this package
imports nothing itself, so that ``modelops.components.naming`` stays cheap for the toolchain.
"""

__all__ = ["dataset", "environment", "metrics", "model", "monitor", "naming", "serving_images", "storage"]
