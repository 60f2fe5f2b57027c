"""What a streamed run (batch scoring, pair scoring, embedding export) reports: one base for their results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Failed rows kept with their reasons in a result; the others are counted.
MAX_ERRORS_KEPT = 1000


@dataclass
class RunResult:
    """Counts shared by every streamed run: failures (the first :data:`MAX_ERRORS_KEPT` kept in ``errors``),
    wall seconds, the output written and the runner description."""

    n_errors: int = 0
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    out: Path | None = None
    runner: str = "serial"
