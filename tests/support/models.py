"""A pydantic model the contract tests save and read back (typed JSON)."""

from __future__ import annotations

from pydantic import BaseModel


class Insight(BaseModel):
    symbol: str
    direction: int
    period_days: float
    magnitude: float | None = None
