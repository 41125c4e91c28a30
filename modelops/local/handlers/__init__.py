"""boto3 handlers for every pulumi_aws type token the components emit, one module per area."""

from modelops.local.handlers import monitoring, pipelines, scheduler, serving, storage  # noqa: F401 - registration
from modelops.local.handlers.base import HANDLERS, Context, Handler

__all__ = ["HANDLERS", "Context", "Handler"]
