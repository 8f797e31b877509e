"""Teacher-forcing schedules: the probability of feeding back the *measured* value at training step i.

Scheduled sampling (Bengio et al., 2015) starts near teacher forcing (p = 1, the model always sees
the truth) and lowers p so that the model learns to live on its own predictions, which is all it has
when it forecasts. ``i`` counts epochs (or optimiser steps, see ``TrainConfig.tf_unit``).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "linear", "exponential", "inverse-sigmoid")


def teacher_forcing_ratio(
    schedule: str, i: int, *, start: float = 1.0, k: float = 0.0, c: float = 0.05, minimum: float = 0.0
) -> float:
    """Probability p(i) in [minimum, 1] of feeding back the measured value at step ``i``.

    - constant:         p = start
    - linear:           p = max(minimum, start - c * i)
    - exponential:      p = start * k**i            (k < 1, e.g. 0.9)
    - inverse-sigmoid:  p = start * k / (k + exp(i / k))   (k >= 1 sets how long p stays high)

    ``k <= 0`` takes the schedule's usual value: 0.9 for exponential, 10 for inverse-sigmoid.
    """
    if k <= 0:
        k = 0.9 if schedule == "exponential" else 10.0
    if schedule == "constant":
        p = start
    elif schedule == "linear":
        p = start - c * i
    elif schedule == "exponential":
        if not 0.0 < k <= 1.0:
            raise ValueError("the exponential schedule needs 0 < k <= 1 (e.g. --tf-k 0.9)")
        p = start * k**i
    elif schedule == "inverse-sigmoid":
        if k < 1.0:
            raise ValueError("the inverse-sigmoid schedule needs k >= 1 (e.g. --tf-k 10)")
        p = start * k / (k + math.exp(min(i / k, 700.0)))
    else:
        raise ValueError(
            f"unknown teacher-forcing schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}"
        )
    return float(min(1.0, max(minimum, p)))
