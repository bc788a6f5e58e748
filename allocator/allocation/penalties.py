"""The allocator's penalties: one point of the parameter grid, shared by both allocators and the report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Penalties:
    """One point of the grid: the overfill, underfill and queue-risk penalties ($/share)."""

    lambda_over: float
    lambda_under: float
    theta_queue: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.lambda_over, self.lambda_under, self.theta_queue)

    def report(self) -> dict[str, float]:
        return {
            "lambda_over": self.lambda_over,
            "lambda_under": self.lambda_under,
            "theta_queue": self.theta_queue,
        }
