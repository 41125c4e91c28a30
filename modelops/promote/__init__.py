"""Promotion: move a model's pinned version from one environment to the next, on evidence."""

from modelops.promote.gates import (
    GATES,
    LOG_NAME,
    Evidence,
    GateResult,
    PromotionRefused,
    PromotionReport,
    PromotionResult,
    append_record,
    deployed_gate,
    evaluate_gates,
    metrics_gate,
    policies_gate,
    promote,
    quiet_gate,
    rewrite_pin,
)

__all__ = [
    "GATES",
    "LOG_NAME",
    "Evidence",
    "GateResult",
    "PromotionRefused",
    "PromotionReport",
    "PromotionResult",
    "append_record",
    "deployed_gate",
    "evaluate_gates",
    "metrics_gate",
    "policies_gate",
    "promote",
    "quiet_gate",
    "rewrite_pin",
]
