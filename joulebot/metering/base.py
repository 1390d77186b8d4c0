"""The one interface every meter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from joulebot.metering.phases import CannotSplit, PhaseEnergy
from joulebot.metering.reading import Reading, Scope


class MeterAbsent(RuntimeError):
    """This machine does not have the meter (or it cannot be read); `str()` says why and what to do."""


class MeterRefused(MeterAbsent):
    """The meter is there but cannot be trusted (a range or an averaging interval that cannot be
    read, set or scaled): never used, never fatal, and every figure says which meter was used instead."""


class Window(ABC):
    """An open measurement window; `stop()` closes it exactly once."""

    @abstractmethod
    def stop(self) -> Reading: ...

    def split(self, at_s: float, band_s: float) -> PhaseEnergy:
        """The closed window's energy before and after `at_s` seconds from its start (± `band_s`).

        A meter read only at the window's edges has nothing in between to split by."""
        raise CannotSplit("this meter reads only at the window's edges: nothing in between to split by")


class Meter(ABC):
    source: str
    scope: Scope
    measured: bool = True

    @abstractmethod
    def start(self) -> Window:
        """Open a window now. Must be cheap: it sits right before the work."""

    def describe(self) -> str:
        return f"{self.source} ({self.scope})"
