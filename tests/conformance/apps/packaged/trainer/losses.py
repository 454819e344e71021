from __future__ import annotations


def smoothed(value: float, alpha: float) -> float:
    return round((1 - alpha) * value, 6)
