"""The Microchip MCP39F511N wall power meter over its USB serial port.

Protocol (datasheet DS20005473B): a request frame is 0xA5, the frame length N
(every byte, header and checksum included), command bytes, and a checksum (the
sum of all preceding bytes mod 256). Commands: 0x41 hi lo sets the address
pointer, 0x4E n reads n bytes, 0x4D n d1..dn writes. The meter answers 0x06
(ACK), 0x15 (NAK) or 0x51 (checksum failure); a read answer continues with its
length L (data + 3), the data and a checksum over ACK, L and the data.

Active power (register 0x0016, u32 little-endian per channel) is polled and
integrated: the Green Metrics Tool found the energy accumulators off by an
unexplained factor of 2. The power range register decides the scale; unknown
ranges are refused rather than guessed.
"""

from __future__ import annotations

import contextlib
import time

import serial

from joulebot.metering.base import Meter
from joulebot.metering.sampling import MeterUnavailable, SampledWindow

HEADER, ACK, NAK, CHECKSUM_FAIL = 0xA5, 0x06, 0x15, 0x51
SET_POINTER, READ, WRITE = 0x41, 0x4E, 0x4D
REG_ACTIVE_POWER = 0x0016
REG_RANGE = 0x00AE
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

    def __init__(self, port: str, timeout_s: float = 0.5) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._serial: serial.Serial | None = None
        self._stale = False

    def open(self) -> None:
        self.close()
        try:
            self._serial = serial.Serial(self.port, 115200, bytesize=8, parity="N", stopbits=1, timeout=self.timeout_s)
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise MeterProtocolError(f"cannot open {self.port}: {exc}") from None

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

    def power_range(self) -> int:
        return self.read(REG_RANGE, 4)[2]

    def active_power_raw(self) -> tuple[int, int]:
        data = self.read(REG_ACTIVE_POWER, 8)
        return int.from_bytes(data[:4], "little"), int.from_bytes(data[4:], "little")


class McpMeter(Meter):
    """The wall meter: the whole machine, measured at the mains."""

    source = "mcp39f511n"
    scope = "machine"

    def __init__(self, port: str, interval_s: float = 0.1, channel: int = 1, retries: int = 3, timeout_s: float = 0.5):
        if channel not in (1, 2):
            raise ValueError("MCP39F511N channel must be 1 or 2")
        self.driver = MCP39F511N(port, timeout_s)
        self.interval_s = interval_s
        self.channel = channel
        self.retries = retries
        self.uw_per_lsb = self._scale()

    def _scale(self) -> float:
        power_range = self._with_retries(self.driver.power_range)
        if power_range not in UW_PER_LSB:
            raise MeterUnavailable(
                f"MCP39F511N power range {power_range} is not one joulebot knows how to scale"
                f" (known: {sorted(UW_PER_LSB)}); refusing to guess"
            )
        return UW_PER_LSB[power_range]

    def _with_retries(self, call):
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
        raw = self._with_retries(self.driver.active_power_raw)[self.channel - 1]
        return raw * self.uw_per_lsb / 1e6

    def start(self) -> SampledWindow:
        return SampledWindow(self.power_w, self.interval_s, self.source, self.scope)

    def describe(self) -> str:
        return f"{self.source} on {self.driver.port}, channel {self.channel} (machine, at the wall)"
