"""Distinct end users across many days without reading every conversation: exact while small, HyperLogLog above.

Each daily rollup row stores a sketch of the named end users (non-empty
`end_user_id`) whose conversations started that day: HyperLogLog registers
(2^12 of them, standard error 1.04/√4096 ≈ 1.6 %), their exact number and, while
the day has at most `EXACT_PER_DAY` of them, the sorted list of their 64-bit
hashes. Merging the days of a period keeps the exact union as long as every day
has its list and the lists add up to at most `EXACT_LIMIT` (the query does not
even fetch the lists otherwise); the count is then exact. Above that it is the
HyperLogLog estimate of the merged registers (element-wise maximum).
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


def end_user_hash(end_user_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(end_user_id.encode(), digest_size=8).digest(), "big")


def _update_registers(registers: bytearray, hashes) -> None:
    for value in hashes:
        index = value >> (64 - PRECISION)
        rest = (value << PRECISION) & _MASK64
        rank = 64 - rest.bit_length() + 1 if rest else 64 - PRECISION + 1
        if rank > registers[index]:
            registers[index] = rank


def day_sketch(end_user_ids: Iterable[str]) -> tuple[bytes, bytes | None, int]:
    """One day's end users for storage: (registers, their hashes while few else None, how many).

    A day without named end users stores empty registers and an empty list.
    """
    hashes = {end_user_hash(end_user_id) for end_user_id in end_user_ids}
    if not hashes:
        return b"", b"", 0
    registers = bytearray(REGISTERS)
    _update_registers(registers, hashes)
    listed = struct.pack(f">{len(hashes)}Q", *sorted(hashes)) if len(hashes) <= EXACT_PER_DAY else None
    return bytes(registers), listed, len(hashes)


class EndUserSketch:
    def __init__(self):
        self._registers = bytearray(REGISTERS)
        self._merged: list[np.ndarray] = []
        self._exact: set[int] | None = set()
        self._exact_budget = EXACT_LIMIT

    def add(self, end_user_ids: Iterable[str]) -> "EndUserSketch":
        """Add end users by id (the live rows, or one day's rows at rollup time)."""
        hashes = {end_user_hash(end_user_id) for end_user_id in end_user_ids}
        _update_registers(self._registers, hashes)
        self._keep_exact(hashes)
        return self

    def merge(self, registers: bytes, hashes: bytes | None) -> "EndUserSketch":
        """Merge a stored day (see `day_sketch`); `hashes` None means the day's exact list is not at hand."""
        if registers:
            self._merged.append(np.frombuffer(bytes(registers), dtype=np.uint8))
        if hashes is None:
            self._exact = None
        elif self._exact is not None:
            hashes = bytes(hashes)
            self._keep_exact(struct.unpack(f">{len(hashes) // 8}Q", hashes))
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
