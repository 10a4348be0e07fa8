"""Distinct end users across many days without reading every conversation: exact while small, HyperLogLog above.

Each daily rollup row stores an `EndUserSketch` of the named end users (non-empty
`end_user_id`) whose conversations started that day: HyperLogLog registers
(2^12 of them, standard error 1.04/√4096 ≈ 1.6 %) and, while the day has at most
`EXACT_PER_DAY` of them, the exact list of their 64-bit hashes. Merging the days
of a period keeps the exact union as long as every day has its list and the
lists add up to at most `EXACT_LIMIT`; the count is then exact. Above that it is
the HyperLogLog estimate of the merged registers (element-wise maximum).
"""

import hashlib
import math
import struct
from collections.abc import Iterable

import numpy as np

PRECISION = 12
REGISTERS = 1 << PRECISION
EXACT_PER_DAY = 1024
EXACT_LIMIT = 10_000
_MASK64 = (1 << 64) - 1
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)
_FLAG_EXACT = b"\x01"
_FLAG_ESTIMATE = b"\x00"


def end_user_hash(end_user_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(end_user_id.encode(), digest_size=8).digest(), "big")


class EndUserSketch:
    def __init__(self):
        self._registers = bytearray(REGISTERS)
        self._merged: list[np.ndarray] = []
        self._exact: set[int] | None = set()
        self._exact_budget = EXACT_LIMIT

    def add(self, end_user_ids: Iterable[str]) -> "EndUserSketch":
        """Add end users by id (the live rows, or one day's rows at rollup time)."""
        hashes = {end_user_hash(end_user_id) for end_user_id in end_user_ids}
        registers = self._registers
        for value in hashes:
            index = value >> (64 - PRECISION)
            rest = (value << PRECISION) & _MASK64
            rank = 64 - rest.bit_length() + 1 if rest else 64 - PRECISION + 1
            if rank > registers[index]:
                registers[index] = rank
        self._keep_exact(hashes)
        return self

    def merge(self, stored: bytes) -> "EndUserSketch":
        """Merge a sketch saved with `to_bytes` (a rolled-up day)."""
        stored = bytes(stored)
        self._merged.append(np.frombuffer(stored, dtype=np.uint8, count=REGISTERS, offset=1))
        if stored[:1] == _FLAG_EXACT:
            tail = stored[1 + REGISTERS :]
            self._keep_exact(struct.unpack(f">{len(tail) // 8}Q", tail) if self._exact is not None else ())
        else:
            self._exact = None
        return self

    def _keep_exact(self, hashes) -> None:
        if self._exact is None:
            return
        self._exact_budget -= len(hashes)
        if self._exact_budget < 0:
            self._exact = None
        else:
            self._exact.update(hashes)

    def registers(self) -> np.ndarray:
        own = np.frombuffer(bytes(self._registers), dtype=np.uint8)
        return np.maximum.reduce([own, *self._merged]) if self._merged else own

    def count(self) -> int:
        """The exact number of distinct end users while small, else the HyperLogLog estimate."""
        if self._exact is not None:
            return len(self._exact)
        registers = self.registers()
        estimate = _ALPHA * REGISTERS * REGISTERS / float(np.sum(np.exp2(-registers.astype(np.float64))))
        zeros = int(np.count_nonzero(registers == 0))
        if estimate <= 2.5 * REGISTERS and zeros:
            estimate = REGISTERS * math.log(REGISTERS / zeros)  # linear counting for small sets
        return round(estimate)

    def to_bytes(self) -> bytes:
        """One day's sketch for storage: a flag, the registers, then the exact hashes while few."""
        registers = self.registers().tobytes()
        if self._exact is not None and len(self._exact) <= EXACT_PER_DAY:
            return _FLAG_EXACT + registers + struct.pack(f">{len(self._exact)}Q", *sorted(self._exact))
        return _FLAG_ESTIMATE + registers
