"""Promotion: move a model's pinned version from one environment to the next, on evidence.

``gates`` evaluates the evidence, ``pin`` rewrites the target overlay, ``log`` keeps the
audit trail, ``git`` says who promotes, and ``flow`` ties them together (see docs/promote.md).
"""

from modelops.promote.flow import (
    PromotionRefused,
    PromotionReport,
    PromotionResult,
    evaluate_gates,
    promote,
    promote_canary,
    verify_promotions,
)
from modelops.promote.gates import (
    CANARY_GATES,
    GATES,
    Evidence,
    GateResult,
    canary_gate,
    deployed_gate,
    metrics_gate,
    policies_gate,
    quiet_gate,
    registry_metrics_gate,
)
from modelops.promote.log import LOG_NAME, LogBroken, LogVerification, append_record, verify_log
from modelops.promote.pin import rewrite_pin

__all__ = [
    "CANARY_GATES",
    "GATES",
    "LOG_NAME",
    "Evidence",
    "GateResult",
    "LogBroken",
    "LogVerification",
    "PromotionRefused",
    "PromotionReport",
    "PromotionResult",
    "append_record",
    "canary_gate",
    "deployed_gate",
    "evaluate_gates",
    "metrics_gate",
    "policies_gate",
    "promote",
    "promote_canary",
    "quiet_gate",
    "registry_metrics_gate",
    "rewrite_pin",
    "verify_log",
    "verify_promotions",
]
