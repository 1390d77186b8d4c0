"""The Microchip MCP39F511N wall power meter over its USB serial port.

Protocol (datasheet DS20005473B): a request frame is 0xA5, the frame length N
(every byte, header and checksum included), command bytes, and a checksum (the
sum of all preceding bytes mod 256). Commands: 0x41 hi lo sets the address
pointer, 0x4E n reads n bytes, 0x4D n d1..dn writes. The meter answers 0x06
(ACK), 0x15 (NAK) or 0x51 (checksum failure); a read answer continues with its
length L (data + 3), the data and a checksum over ACK, L and the data.

Active power (register 0x0016, u32 little-endian per channel) is polled and
integrated: the Green Metrics Tool found the energy accumulators off by an
unexplained factor of 2. The register holds the mean power of the last
*completed* accumulation interval of 2^N mains cycles (register 0x00A8), so
each value is put back on the interval it averages and sampling goes on until
the interval covering the window's end has come out (`BlockAverages`).

At every open (the first, and again after the port came back) the driver reads
the selected channel's own range register, refuses ranges it cannot scale,
sets N (it lives in the chip's RAM: a power cycle resets it to 4) and reads it
back. A range or interval that changed under a running worker is refused, with
the reason, rather than silently rescaled.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import serial

from joulebot.metering.base import Meter
from joulebot.metering.sampling import BlockAverages, MeterSetupRefused, MeterUnavailable, SampledWindow

T = TypeVar("T")

HEADER, ACK, NAK, CHECKSUM_FAIL = 0xA5, 0x06, 0x15, 0x51
SET_POINTER, READ, WRITE = 0x41, 0x4E, 0x4D
REG_ACTIVE_POWER = 0x0016
REG_ACCUMULATION_INTERVAL = 0x00A8
REG_RANGE = {1: 0x00AE, 2: 0x00BE}  # one range register per channel: voltage, current, power range bytes
TRUSTED_VOLTAGE_CURRENT_RANGES = (18, 12)  # what the Green Metrics Tool checks before trusting the power range
ACCURACY = 0.005  # board documentation: 0.5 % over a 1:4000 range
# µW per LSB of active power, by the power range (byte 2 of the range register).
# 19 is the factory setting (10 mW); 6 is what the Green Metrics Tool sets.
UW_PER_LSB = {19: 10_000.0, 6: 10_000 / 2**13}


class MeterProtocolError(IOError):
    """One exchange with the meter failed; `str()` says how."""


def checksum(data: bytes) -> int:
    return sum(data) % 256


def frame(commands: bytes) -> bytes:
    body = bytes([HEADER, len(commands) + 3]) + commands
    return body + bytes([checksum(body)])


def read_frame(address: int, n: int) -> bytes:
    return frame(bytes([SET_POINTER, address >> 8, address & 0xFF, READ, n]))


def write_frame(address: int, data: bytes) -> bytes:
    return frame(bytes([SET_POINTER, address >> 8, address & 0xFF, WRITE, len(data)]) + data)


class MCP39F511N:
    """Request/response over one serial port (115200 8N1, no flow control)."""

    def __init__(self, port: str, timeout_s: float = 0.5, on_open: Callable[[], None] = lambda: None) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.on_open = on_open  # runs after every (re)open, before any other exchange
        self._serial: serial.Serial | None = None
        self._stale = False
        self.port_opened = False  # the port itself opened at least once (whatever the meter then said)

    def open(self) -> None:
        self.close()
        try:
            self._serial = serial.Serial(self.port, 115200, bytesize=8, parity="N", stopbits=1, timeout=self.timeout_s)
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise MeterProtocolError(f"cannot open {self.port}: {exc}") from None
        self.port_opened = True
        try:
            self.on_open()
        except BaseException:
            self.close()  # the next exchange opens (and checks) again
            raise

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._serial.close()
            self._serial = None

    def _exchange(self, request: bytes) -> int:
        if self._serial is None:
            self.open()
        try:
            if self._stale:  # bytes of an answer we gave up on may still arrive: drop them first
                self._serial.reset_input_buffer()  # type: ignore[union-attr]
                self._stale = False
            self._serial.write(request)  # type: ignore[union-attr]
            head = self._serial.read(1)  # type: ignore[union-attr]
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise MeterProtocolError(f"port error on {self.port}: {exc}") from None
        if not head:
            raise self._failed(f"no answer within {self.timeout_s:g} s")
        if head[0] == NAK:
            raise self._failed("the meter answered NAK")
        if head[0] == CHECKSUM_FAIL:
            raise self._failed("the meter rejected our frame's checksum")
        if head[0] != ACK:
            raise self._failed(f"unexpected answer byte 0x{head[0]:02X}")
        return head[0]

    def _failed(self, reason: str) -> MeterProtocolError:
        self._stale = True
        return MeterProtocolError(reason)

    def _read_exact(self, n: int) -> bytes:
        try:
            data = self._serial.read(n)  # type: ignore[union-attr]
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise MeterProtocolError(f"port error on {self.port}: {exc}") from None
        if len(data) != n:
            raise self._failed(f"short read: {len(data)} of {n} bytes")
        return data

    def read(self, address: int, n: int) -> bytes:
        self._exchange(read_frame(address, n))
        rest = self._read_exact(n + 2)  # length, data, checksum: one read when all is well
        length, data, received = rest[0], rest[1:-1], rest[-1]
        if length != n + 3:
            raise self._failed(f"answer length {length}, expected {n + 3}")
        if checksum(bytes([ACK, length]) + data) != received:
            raise self._failed("bad checksum in the meter's answer")
        return data

    def write(self, address: int, data: bytes) -> None:
        self._exchange(write_frame(address, data))

    def ranges(self, channel: int) -> tuple[int, int, int]:
        """(voltage, current, power) range of one channel."""
        data = self.read(REG_RANGE[channel], 4)
        return data[0], data[1], data[2]

    def power_range(self, channel: int = 1) -> int:
        return self.ranges(channel)[2]

    def accumulation_n(self) -> int:
        return int.from_bytes(self.read(REG_ACCUMULATION_INTERVAL, 2), "little")

    def set_accumulation_n(self, n: int) -> None:
        self.write(REG_ACCUMULATION_INTERVAL, n.to_bytes(2, "little"))

    def active_power_raw(self) -> tuple[int, int]:
        data = self.read(REG_ACTIVE_POWER, 8)
        return int.from_bytes(data[:4], "little"), int.from_bytes(data[4:], "little")


@dataclass(frozen=True)
class McpSetup:
    """What the meter was found (or set) to at open."""

    power_range: int
    accumulation_n: int
    set_by_us: bool  # N was written by joulebot (else: read as found)
    mains_hz: float

    @property
    def interval_s(self) -> float:
        return 2**self.accumulation_n / self.mains_hz

    def describe(self) -> str:
        how = "set by joulebot" if self.set_by_us else "as found on the meter"
        return (
            f"averages over 2^{self.accumulation_n} mains cycles = {self.interval_s * 1000:.0f} ms at"
            f" {self.mains_hz:g} Hz ({how}); power range {self.power_range}"
        )


class McpMeter(Meter):
    """The wall meter: the whole machine, measured at the mains.

    `accumulation_n`: the averaging interval to set at every open (None: read it and use
    it as found). `mains_hz`: the mains frequency, which turns cycles into seconds.
    """

    source = "mcp39f511n"
    scope = "machine"

    def __init__(
        self,
        port: str,
        interval_s: float = 0.1,
        channel: int = 1,
        retries: int = 3,
        timeout_s: float = 0.5,
        accumulation_n: int | None = 1,
        mains_hz: float = 50.0,
    ) -> None:
        if channel not in (1, 2):
            raise ValueError("MCP39F511N channel must be 1 or 2")
        if accumulation_n is not None and not 1 <= accumulation_n <= 10:
            raise ValueError("MCP39F511N accumulation N must be 1 to 10 (N = 0 gives wrong power factors)")
        self.interval_s = interval_s
        self.channel = channel
        self.retries = retries
        self.accumulation_n = accumulation_n
        self.mains_hz = mains_hz
        self.setup: McpSetup | None = None
        self.refused: str | None = None  # set once the meter changed under us: every later window fails
        self.driver = MCP39F511N(port, timeout_s, on_open=self._check_setup)
        try:
            self._with_retries(self.driver.open)
        except MeterSetupRefused:
            raise
        except MeterUnavailable as exc:
            if not self.driver.port_opened:
                raise  # no port: the meter is absent, not refused
            raise MeterSetupRefused(f"its range and averaging interval could not be read or set: {exc}") from None

    def _check_setup(self) -> None:
        """Runs at every open: read this channel's range, set (or read) N, compare with the first open."""
        volts, amps, power_range = self.driver.ranges(self.channel)
        where = f"MCP39F511N channel {self.channel}"
        if (volts, amps) != TRUSTED_VOLTAGE_CURRENT_RANGES:
            raise MeterSetupRefused(
                f"{where}: voltage/current range {volts}/{amps}, not the"
                f" {TRUSTED_VOLTAGE_CURRENT_RANGES[0]}/{TRUSTED_VOLTAGE_CURRENT_RANGES[1]} joulebot can scale;"
                " refusing to guess"
            )
        if power_range not in UW_PER_LSB:
            raise MeterSetupRefused(
                f"{where}: power range {power_range} is not one joulebot knows how to scale"
                f" (known: {sorted(UW_PER_LSB)}); refusing to guess"
            )
        if self.accumulation_n is not None:
            self.driver.set_accumulation_n(self.accumulation_n)
        n = self.driver.accumulation_n()
        if self.accumulation_n is not None and n != self.accumulation_n:
            raise MeterSetupRefused(f"{where}: wrote accumulation interval N={self.accumulation_n}, reads back {n}")
        if not 1 <= n <= 10:
            raise MeterSetupRefused(f"{where}: accumulation interval N={n} (2^N mains cycles) is not usable")
        setup = McpSetup(power_range, n, self.accumulation_n is not None, self.mains_hz)
        if self.setup is not None and setup != self.setup:
            self.refused = (
                f"{where} changed while the worker ran (was: {self.setup.describe()}; now: {setup.describe()});"
                " restart the worker to use it again"
            )
            raise MeterSetupRefused(self.refused)
        self.setup = setup

    @property
    def uw_per_lsb(self) -> float:
        assert self.setup is not None
        return UW_PER_LSB[self.setup.power_range]

    def _with_retries(self, call: Callable[[], T]) -> T:
        reason = ""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except MeterProtocolError as exc:
                reason = str(exc)
                if attempt < self.retries:
                    time.sleep(min(0.02 * 2**attempt, 0.2))
        raise MeterUnavailable(f"{self.source} on {self.driver.port}: {reason} (after {self.retries + 1} tries)")

    def power_w(self) -> float:
        """The active-power register of the channel: the mean of the last completed interval."""
        if self.refused:
            raise MeterSetupRefused(self.refused)
        raw = self._with_retries(self.driver.active_power_raw)[self.channel - 1]
        return raw * self.uw_per_lsb / 1e6

    def poll_s(self) -> float:
        """Poll at least four times per averaging interval, to place each new value within a quarter of it."""
        assert self.setup is not None
        return min(self.interval_s, self.setup.interval_s / 4)

    def start(self) -> SampledWindow:
        assert self.setup is not None
        poll = self.poll_s()
        return SampledWindow(
            self.power_w,
            poll,
            self.source,
            self.scope,
            BlockAverages(self.setup.interval_s),
            accuracy=ACCURACY,
            lsb_w=self.uw_per_lsb / 1e6,
            update_s=self.setup.interval_s,
            method=f"power register {self.setup.describe()}, polled every {poll * 1000:g} ms",
        )

    def describe(self) -> str:
        setup = f"; {self.setup.describe()}" if self.setup else ""
        return f"{self.source} on {self.driver.port}, channel {self.channel} (machine, at the wall{setup})"
