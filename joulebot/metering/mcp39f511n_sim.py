"""A simulated MCP39F511N on a pseudo-terminal, speaking the protocol byte for byte.

For tests, benchmarks and operators without the hardware at hand
(`joulebot meter simulate`). It validates every request frame (header,
length, checksum), answers reads and writes from a register map, and computes
the active power register from a power function of time at each read. Faults
can be queued to exercise the driver: "bad_checksum", "nak", "checksum_fail",
"silence", "short", "garbage", and "vanish" (the port disappears).
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable

from joulebot.metering.mcp39f511n import (
    ACK,
    CHECKSUM_FAIL,
    HEADER,
    NAK,
    READ,
    REG_ACTIVE_POWER,
    REG_RANGE,
    SET_POINTER,
    UW_PER_LSB,
    WRITE,
    checksum,
)

PowerTrace = Callable[[float], float]  # seconds since start -> watts


class SimulatedMCP39F511N:
    def __init__(self, power_w: PowerTrace | float = 100.0, power_range: int = 19, channel2_w: float = 0.0) -> None:
        self.power_w: PowerTrace = power_w if callable(power_w) else (lambda _t, w=float(power_w): w)
        self.channel2_w = channel2_w
        self.registers = bytearray(0x200)
        self.registers[REG_RANGE : REG_RANGE + 4] = bytes([0x12, 0x0C, power_range, 0x00])
        self.faults: collections.deque[str] = collections.deque()
        self.frames_seen = 0
        self.bad_frames = 0
        self._pointer = 0
        self.t0 = time.perf_counter()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes as they are
        self.port = os.ttyname(self._slave)
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="mcp-sim", daemon=True)
        self._thread.start()

    # -- the register map -------------------------------------------------
    def _raw_power(self, watts: float) -> bytes:
        uw_per_lsb = UW_PER_LSB.get(self.registers[REG_RANGE + 2], UW_PER_LSB[19])
        return max(0, round(watts * 1e6 / uw_per_lsb)).to_bytes(4, "little")

    def _refresh_power(self) -> None:
        t = time.perf_counter() - self.t0
        self.registers[REG_ACTIVE_POWER : REG_ACTIVE_POWER + 8] = self._raw_power(self.power_w(t)) + self._raw_power(
            self.channel2_w
        )

    # -- the wire ------------------------------------------------------------
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
            if head is None or head[0] != HEADER:
                continue
            length = self._read_bytes(1)
            if length is None or length[0] < 4:
                continue
            rest = self._read_bytes(length[0] - 2)
            if rest is None:
                continue
            self.frames_seen += 1
            request = head + length + rest
            if checksum(request[:-1]) != request[-1]:
                self.bad_frames += 1
                self._send(bytes([CHECKSUM_FAIL]))
                continue
            self._answer(request[2:-1])

    def _answer(self, commands: bytes) -> None:
        fault = self.faults.popleft() if self.faults else None
        if fault == "vanish":
            self.close()
            return
        if fault == "silence":
            return
        if fault == "nak":
            self._send(bytes([NAK]))
            return
        if fault == "checksum_fail":
            self._send(bytes([CHECKSUM_FAIL]))
            return
        if fault == "garbage":
            self._send(b"\x42\x42")
            return
        reply = b""
        i = 0
        while i < len(commands):
            op = commands[i]
            if op == SET_POINTER:
                self._pointer = (commands[i + 1] << 8) | commands[i + 2]
                i += 3
            elif op == READ:
                n = commands[i + 1]
                self._refresh_power()
                data = bytes(self.registers[self._pointer : self._pointer + n])
                body = bytes([ACK, n + 3]) + data
                reply = body + bytes([checksum(body)])
                i += 2
            elif op == WRITE:
                n = commands[i + 1]
                self.registers[self._pointer : self._pointer + n] = commands[i + 2 : i + 2 + n]
                reply = bytes([ACK])
                i += 2 + n
            else:
                self._send(bytes([NAK]))
                return
        if fault == "bad_checksum" and len(reply) > 1:
            reply = reply[:-1] + bytes([(reply[-1] + 1) % 256])
        elif fault == "short" and len(reply) > 3:
            reply = reply[:3]
        self._send(reply)

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, data)

    def close(self) -> None:
        """Stop answering and close both ends: to the driver, the port vanished."""
        self._running = False
        if threading.current_thread() is not self._thread:
            # before the fds are closed: their numbers may be reused by the next pty at once
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SimulatedMCP39F511N:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
