"""Meters behind one small interface: start a window, stop it, get a Reading.

Each meter is a module of its own; `detect.py` picks the ones this machine has,
`answer_energy.py` combines them into one answer's machine figure and the idle baseline.
"""

from joulebot.metering.base import Meter, Window
from joulebot.metering.reading import Energy, IdleBaseline, Phases, Reading

__all__ = ["Energy", "IdleBaseline", "Meter", "Phases", "Reading", "Window"]
