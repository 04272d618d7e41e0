"""The shape every flow's run report shares: one result per item, counted by outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar


class HasOutcome(Protocol):
    @property
    def outcome(self) -> str: ...


R = TypeVar("R", bound=HasOutcome)


@dataclass
class RunReport(Generic[R]):
    """A run's results; ``counts`` gives every outcome in ``OUTCOMES``, zeros included."""

    results: list[R] = field(default_factory=list)

    OUTCOMES: ClassVar[tuple[str, ...]] = ()

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(r.outcome for r in self.results)
        return {name: counts.get(name, 0) for name in self.OUTCOMES}

    def with_outcome(self, *outcomes: str) -> list[R]:
        """The results whose outcome is one of ``outcomes``, in run order."""
        return [r for r in self.results if r.outcome in outcomes]
