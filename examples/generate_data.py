"""Generate the example datasets: ``churn/data/customers.csv`` and ``fraud/data/transactions.csv``
(and the same two files under ``teams/data/`` for the multi-file example).

The data is SYNTHETIC. It is drawn from a seeded ``numpy.random.RandomState`` (the legacy
generator, whose streams numpy keeps stable across versions) following the simple,
documented generating processes below; no real customer or transaction data is used and
nothing is downloaded. The same script always writes byte-identical files, so the dataset
digests (and therefore the model artifact digests) are reproducible.

The processes are chosen so the example models can honestly meet their promotion gates:
the labels depend on the features through a known signal plus noise, with the noise
level set so the problem is learnable but not trivial.

churn/data/customers.csv (2,000 rows)
    tenure_months    int 1..72, uniform
    monthly_charges  float, 20 + 100 * Beta(2, 2), 2 decimals
    support_calls    int, Poisson(1.5)
    contract         categorical: month-to-month (55%), one-year (25%), two-year (20%)
    payment_method   categorical: electronic-check, credit-card, bank-transfer, mailed-check
    churned          0/1 ~ Bernoulli(sigmoid(s)) with the churn score
                     s = -2.8 + 4.0*[month-to-month] - 2.0*[two-year] - 0.12*(tenure - 36)
                         + 0.065*(monthly_charges - 70) + 1.0*(support_calls - 1.5)
                         + 1.3*[electronic-check]

fraud/data/transactions.csv (3,000 rows)
    hour             int 0..23 (more traffic in the day)
    merchant_risk    float 0..1, Beta(2, 5), 3 decimals
    distance_km      float, Exponential(mean 25), 1 decimal
    card_age_days    int 1..3650, uniform
    channel          categorical: online (50%), in-store (40%), atm (10%)
    amount           float, exp(3.0 + 2.2*merchant_risk + 0.012*min(distance, 150)
                         - 0.00015*card_age_days + 0.25*[hour in 0..5] + N(0, 0.55)), 2 decimals
    is_fraud         0/1 ~ Bernoulli(sigmoid(f)) with
                     f = -4.4 + 4.5*merchant_risk + 0.03*min(distance, 150) - 0.0008*card_age_days
                         + 1.2*[hour in 0..5] + 0.9*[online] + 0.004*amount

Run from the repository root::

    python examples/generate_data.py
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHURN_ROWS = 2000
FRAUD_ROWS = 3000
CHURN_SEED = 20240601
FRAUD_SEED = 20240602


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def churn_rows(n: int = CHURN_ROWS, seed: int = CHURN_SEED) -> tuple[list[str], list[list[object]]]:
    """The customer snapshot as (header, rows); see the module docstring for the process."""
    rng = np.random.RandomState(seed)
    tenure = rng.randint(1, 73, size=n)
    charges = np.round(20.0 + 100.0 * rng.beta(2.0, 2.0, size=n), 2)
    calls = rng.poisson(1.5, size=n)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], size=n, p=[0.55, 0.25, 0.20])
    payment = rng.choice(
        ["electronic-check", "credit-card", "bank-transfer", "mailed-check"], size=n, p=[0.35, 0.25, 0.25, 0.15]
    )
    score = (
        -2.8
        + 4.0 * (contract == "month-to-month")
        - 2.0 * (contract == "two-year")
        - 0.12 * (tenure - 36)
        + 0.065 * (charges - 70.0)
        + 1.0 * (calls - 1.5)
        + 1.3 * (payment == "electronic-check")
    )
    churned = (rng.uniform(size=n) < _sigmoid(score)).astype(int)
    header = ["tenure_months", "monthly_charges", "support_calls", "contract", "payment_method", "churned"]
    rows = [
        [int(tenure[i]), f"{charges[i]:.2f}", int(calls[i]), str(contract[i]), str(payment[i]), int(churned[i])]
        for i in range(n)
    ]
    return header, rows


def fraud_rows(n: int = FRAUD_ROWS, seed: int = FRAUD_SEED) -> tuple[list[str], list[list[object]]]:
    """The card transactions as (header, rows); see the module docstring for the process."""
    rng = np.random.RandomState(seed)
    hour_weights = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 6, 6, 5, 4, 3, 2, 1], dtype=float)
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum())
    risk = np.round(rng.beta(2.0, 5.0, size=n), 3)
    distance = np.round(rng.exponential(25.0, size=n), 1)
    card_age = rng.randint(1, 3651, size=n)
    channel = rng.choice(["online", "in-store", "atm"], size=n, p=[0.5, 0.4, 0.1])
    night = (hour <= 5).astype(float)
    near = np.minimum(distance, 150.0)
    log_amount = 3.0 + 2.2 * risk + 0.012 * near - 0.00015 * card_age + 0.25 * night + rng.normal(0.0, 0.55, size=n)
    amount = np.round(np.exp(log_amount), 2)
    logit = (
        -4.4
        + 4.5 * risk
        + 0.03 * near
        - 0.0008 * card_age
        + 1.2 * night
        + 0.9 * (channel == "online")
        + 0.004 * amount
    )
    fraud = (rng.uniform(size=n) < _sigmoid(logit)).astype(int)
    header = ["hour", "merchant_risk", "distance_km", "card_age_days", "channel", "amount", "is_fraud"]
    rows = [
        [
            int(hour[i]),
            f"{risk[i]:.3f}",
            f"{distance[i]:.1f}",
            int(card_age[i]),
            str(channel[i]),
            f"{amount[i]:.2f}",
            int(fraud[i]),
        ]
        for i in range(n)
    ]
    return header, rows


def to_csv(header: list[str], rows: list[list[object]]) -> bytes:
    """CSV bytes with ``\\n`` line endings on every platform (the digest must not vary)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def main() -> None:
    targets = {
        HERE / "churn" / "data" / "customers.csv": churn_rows(),
        HERE / "fraud" / "data" / "transactions.csv": fraud_rows(),
        # the multi-file example: the same two datasets, one per team file
        HERE / "teams" / "data" / "customers.csv": churn_rows(),
        HERE / "teams" / "data" / "transactions.csv": fraud_rows(),
    }
    for path, (header, rows) in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_csv(header, rows))
        print(f"wrote {path.relative_to(HERE.parent)} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
