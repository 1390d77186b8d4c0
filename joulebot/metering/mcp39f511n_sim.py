"""A simulated MCP39F511N on a pseudo-terminal, written from the datasheet (DS20005473B).

It shares nothing with the driver (`mcp39f511n.py`): its own register map and
byte values, taken from the datasheet's tables, so that a wrong constant or a
wrong assumption in the driver shows up as a failed test instead of being
mirrored. Used by the tests, the benchmarks and `joulebot meter simulate`.

What it models, as the chip does:
- the active-power registers hold the *mean* power of the last **completed**
  accumulation interval of 2^N mains cycles (N: register 0x00A8, writable,
  factory value 4, kept in RAM only), so they lag the load by up to one
  interval and change only at interval boundaries;
- one range register per channel (voltage, current and power range bytes);
  the power LSB is 10 mW at power range 19 and halves with every step down;
- a load profile per channel (a constant, `Steps`, or any function of time);
- a power cycle (`replug()`): the port goes away and comes back under the same
  name (a symlink, like udev's /dev/serial/by-id), with the RAM settings lost.

Faults can be queued to exercise the driver: "bad_checksum", "nak",
"checksum_fail", "silence", "short", "garbage", and "vanish" (the port goes
away for good).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import random
import select
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

# Datasheet DS20005473B, section 4 (communication protocol), with the byte values it gives.
FRAME_START = 0xA5  # "Header Byte"
CMD_SET_ADDRESS_POINTER = ord("A")  # 0x41
CMD_REGISTER_READ_N_BYTES = ord("N")  # 0x4E
CMD_REGISTER_WRITE_N_BYTES = ord("M")  # 0x4D
RESPONSE_ACK = 0x06
RESPONSE_NAK = 0x15
RESPONSE_CSFAIL = 0x51

# Datasheet, register map (section 6): name -> (address, width in bytes).
REGISTER_MAP: dict[str, tuple[int, int]] = {
    "Active Power 1": (0x0016, 4),
    "Active Power 2": (0x001A, 4),
    "System Configuration": (0x00A0, 4),
    "Accumulation Interval Parameter": (0x00A8, 2),
    "Range 1": (0x00AE, 4),
    "Range 2": (0x00BE, 4),
}
FACTORY_ACCUMULATION_N = 4  # 2^4 = 16 line cycles
FACTORY_RANGE = (18, 12, 19)  # voltage, current, power range bytes (power LSB 10 mW)


def power_lsb_w(power_range: int) -> float:
    """Watts per LSB of the active-power register: 0.01 W at power range 19, halving per step down."""
    return 0.01 * 2.0 ** (power_range - 19)


class Steps:
    """A programmable load: `base_w`, then each (at_s, watts) from its time on (simulator time)."""

    def __init__(self, base_w: float, changes: list[tuple[float, float]]) -> None:
        self.base_w = base_w
        self.changes = sorted(changes)

    def __call__(self, t: float) -> float:
        watts = self.base_w
        for at, level in self.changes:
            if t < at:
                break
            watts = level
        return watts

    def energy(self, t0: float, t1: float) -> float:
        """The exact energy between t0 and t1, in joules."""
        edges = [t0, *(at for at, _ in self.changes if t0 < at < t1), t1]
        return sum(self((a + b) / 2) * (b - a) for a, b in itertools.pairwise(edges))


class Load:
    """A load profile: watts as a function of simulator time, and its exact-enough integral."""

    def __init__(self, profile: Callable[[float], float] | float) -> None:
        self.profile = profile if callable(profile) else (lambda _t, w=float(profile): w)

    def watts(self, t: float) -> float:
        return float(self.profile(t))

    def energy(self, t0: float, t1: float) -> float:
        exact = getattr(self.profile, "energy", None)
        if exact is not None:
            return float(exact(t0, t1))
        n = max(1, math.ceil((t1 - t0) / 1e-4))  # midpoint rule on a 0.1 ms grid
        h = (t1 - t0) / n
        return sum(self.profile(t0 + (i + 0.5) * h) for i in range(n)) * h


class SimulatedMCP39F511N:
    def __init__(
        self,
        power_w: Callable[[float], float] | float = 100.0,
        power_range: int = 19,
        channel2_w: Callable[[float], float] | float = 0.0,
        *,
        channel2_range: int | None = None,
        mains_hz: float = 50.0,
        accumulation_n: int = FACTORY_ACCUMULATION_N,
        voltage_range: int = FACTORY_RANGE[0],
        current_range: int = FACTORY_RANGE[1],
        seed: int | None = None,
    ) -> None:
        self.loads = {1: Load(power_w), 2: Load(channel2_w)}
        self.mains_hz = mains_hz
        self.ranges = {
            1: (voltage_range, current_range, power_range),
            2: (voltage_range, current_range, power_range if channel2_range is None else channel2_range),
        }
        self.faults: collections.deque[str] = collections.deque()
        self.frames_seen = 0
        self.bad_frames = 0
        self.writes: list[tuple[int, bytes]] = []
        self.t0 = time.perf_counter()
        self._rng = random.Random(seed)  # the phase of the interval grid: arbitrary, as mains cycles are
        self._link_dir = tempfile.mkdtemp(prefix="mcp-sim-")
        self.port = str(Path(self._link_dir) / "ttyMCP")
        self._lock = threading.Lock()
        self._power_on(accumulation_n)

    # -- time and the chip's averaging ---------------------------------------
    def now(self) -> float:
        """Simulator time: seconds since the simulator started (the load profiles' clock)."""
        return time.perf_counter() - self.t0

    def sim_time(self, perf_counter: float) -> float:
        """A `time.perf_counter()` value in simulator time."""
        return perf_counter - self.t0

    def true_energy(self, start: float, stop: float, channel: int = 1) -> float:
        """The load's exact energy between two `time.perf_counter()` values: the truth to test against."""
        return self.loads[channel].energy(self.sim_time(start), self.sim_time(stop))

    @property
    def accumulation_n(self) -> int:
        return int.from_bytes(self._register("Accumulation Interval Parameter"), "little")

    @property
    def interval_s(self) -> float:
        """The accumulation interval: 2^N line cycles."""
        return 2**self.accumulation_n / self.mains_hz

    def _mean_power(self, channel: int, t: float) -> float:
        period = self.interval_s
        k = math.floor((t - self._grid_start) / period) - 1  # the last interval completed by t
        begin = self._grid_start + k * period
        return self.loads[channel].energy(begin, begin + period) / period

    # -- the register map ------------------------------------------------------
    def _register(self, name: str) -> bytes:
        address, width = REGISTER_MAP[name]
        return bytes(self._memory[address : address + width])

    def _set_register(self, name: str, value: bytes) -> None:
        address, width = REGISTER_MAP[name]
        assert len(value) == width
        self._memory[address : address + width] = value

    def _refresh_outputs(self) -> None:
        t = self.now()
        for channel in (1, 2):
            lsb = power_lsb_w(self._memory[REGISTER_MAP[f"Range {channel}"][0] + 2])
            raw = max(0, round(self._mean_power(channel, t) / lsb))
            self._set_register(f"Active Power {channel}", min(raw, 2**32 - 1).to_bytes(4, "little"))

    def _power_on(self, accumulation_n: int) -> None:
        self._memory = bytearray(0x200)
        for channel in (1, 2):
            self._set_register(f"Range {channel}", bytes([*self.ranges[channel], 0]))
        self._set_register("Accumulation Interval Parameter", accumulation_n.to_bytes(2, "little"))
        self._grid_start = self.now() - self._rng.uniform(0.0, 2**accumulation_n / self.mains_hz)
        self._pointer = 0
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes as they are
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.port)
        os.symlink(os.ttyname(slave), self.port)
        self._master, self._slave = master, slave
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="mcp-sim", daemon=True)
        self._thread.start()

    def replug(self, power_range: int | None = None, channel: int = 1) -> None:
        """A power cycle: the port disappears, then comes back under the same name with factory RAM settings.

        `power_range` gives the channel's range after the cycle (a different
        calibration loaded), to test that the driver notices.
        """
        self._shutdown()
        if power_range is not None:
            volts, amps, _ = self.ranges[channel]
            self.ranges[channel] = (volts, amps, power_range)
        self._power_on(FACTORY_ACCUMULATION_N)

    # -- the wire ----------------------------------------------------------------
    def _read_bytes(self, n: int, timeout: float = 1.0) -> bytes | None:
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < n and self._running:
            ready, _, _ = select.select([self._master], [], [], max(0.0, min(0.1, deadline - time.monotonic())))
            if not ready:
                if time.monotonic() >= deadline:
                    return None
                continue
            try:
                chunk = os.read(self._master, n - len(data))
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data if len(data) == n else None

    def _serve(self) -> None:
        while self._running:
            head = self._read_bytes(1, timeout=0.2)
            if head is None or head[0] != FRAME_START:
                continue
            length = self._read_bytes(1)
            if length is None or length[0] < 4:
                continue
            rest = self._read_bytes(length[0] - 2)
            if rest is None:
                continue
            self.frames_seen += 1
            request = head + length + rest
            if sum(request[:-1]) & 0xFF != request[-1]:
                self.bad_frames += 1
                self._send(bytes([RESPONSE_CSFAIL]))
                continue
            with self._lock:
                self._answer(request[2:-1])

    def _answer(self, commands: bytes) -> None:
        fault = self.faults.popleft() if self.faults else None
        if fault == "vanish":
            self._running = False
            self._close_fds()
            return
        canned = {
            "silence": b"",
            "nak": bytes([RESPONSE_NAK]),
            "checksum_fail": bytes([RESPONSE_CSFAIL]),
            "garbage": b"\x42\x42",
        }
        if fault in canned:
            self._send(canned[fault])
            return
        reply = b""
        i = 0
        while i < len(commands):
            op = commands[i]
            if op == CMD_SET_ADDRESS_POINTER:
                self._pointer = int.from_bytes(commands[i + 1 : i + 3], "big")
                i += 3
            elif op == CMD_REGISTER_READ_N_BYTES:
                n = commands[i + 1]
                self._refresh_outputs()
                data = bytes(self._memory[self._pointer : self._pointer + n])
                body = bytes([RESPONSE_ACK, n + 3]) + data
                reply = body + bytes([sum(body) & 0xFF])
                i += 2
            elif op == CMD_REGISTER_WRITE_N_BYTES:
                n = commands[i + 1]
                data = bytes(commands[i + 2 : i + 2 + n])
                self._write(self._pointer, data)
                reply = bytes([RESPONSE_ACK])
                i += 2 + n
            else:
                self._send(bytes([RESPONSE_NAK]))
                return
        if fault == "bad_checksum" and len(reply) > 1:
            reply = reply[:-1] + bytes([(reply[-1] + 1) % 256])
        elif fault == "short" and len(reply) > 3:
            reply = reply[:3]
        self._send(reply)

    def _write(self, address: int, data: bytes) -> None:
        self.writes.append((address, data))
        interval_address = REGISTER_MAP["Accumulation Interval Parameter"][0]
        before = self.accumulation_n
        self._memory[address : address + len(data)] = data
        if address == interval_address and self.accumulation_n != before:
            self._grid_start = self.now()  # averaging restarts with the new interval

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    # -- life cycle ----------------------------------------------------------
    def _close_fds(self) -> None:
        """Each end once: a "vanish" closes them on the serving thread and `close` comes later; a number
        closed twice may meanwhile belong to a file another thread opened."""
        fds, self._master, self._slave = (self._master, self._slave), -1, -1
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _shutdown(self) -> None:
        self._running = False
        if threading.current_thread() is not self._thread:
            # before the fds are closed: their numbers may be reused by the next pty at once
            self._thread.join(timeout=2)
        self._close_fds()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.port)

    def close(self) -> None:
        """Stop answering and close both ends: to the driver, the port vanished."""
        self._shutdown()
        with contextlib.suppress(OSError):
            os.rmdir(self._link_dir)

    def __enter__(self) -> SimulatedMCP39F511N:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
