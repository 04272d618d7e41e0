"""Column helpers for the inventory diff: strings to int codes, exact integer arithmetic.

A catalogue of 250,000 SKUs in 4 channels is 1,000,000 (SKU, channel) pairs. Holding each pair
as Python objects (tuples as dict keys, one record per pair) costs seconds and gigabytes, most of
it the garbage collector walking those objects. Here SKUs become int codes once
(``pandas.factorize``, a hash table in C), a (SKU, channel) pair one int64 key, and everything
after that is numpy arithmetic on int64 arrays; only rows that are written become Python objects.

Shares and buffer percentages are Decimals with at most 4 decimal places (the rules validate
that), so ``value * percent / 100`` is ``value * p / 1_000_000`` with an integer ``p``: floor and
ceiling are exact integer divisions, the same results as the Decimal arithmetic of the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd

Codes = npt.NDArray[np.int64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]

#: percent / 100 = p / PER_MILLION with integer p (4 decimal places of a percentage)
PER_MILLION = 1_000_000
_PERCENT_SCALE = 10_000
#: |value| * p stays inside int64 below this (p < 100 * 10,000 = 1,000,000)
_SAFE = (2**63 - 1) // PER_MILLION


def per_million(percent: Decimal) -> int:
    """``percent`` (0-100, at most 4 decimal places) as millionths of the whole, exactly."""
    scaled = percent * _PERCENT_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"percentage {percent} has more than 4 decimal places")
    return int(scaled)


def ints(values: Sequence[object]) -> Ints:
    """A list of integers (from JSON or models) as int64."""
    return np.asarray(values, dtype=np.int64) if len(values) else np.zeros(0, np.int64)


def factorize(values: Sequence[str] | Objects) -> tuple[Codes, Objects]:
    """Int codes (in order of first appearance) and the distinct values."""
    if not len(values):
        return np.zeros(0, np.int64), np.empty(0, dtype=object)
    array = values if isinstance(values, np.ndarray) else np.array(values, dtype=object)
    codes, uniques = pd.factorize(array, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


#: rows read into Python lists before they become arrays: the lists (and the strings they
#: hold, one per row) stay small however many rows stream through
CHUNK = 1 << 16


class Codebook:
    """Int codes for strings arriving in chunks: the same string gets the same code in every
    chunk, and only one copy of each distinct string is kept (not one per row)."""

    __slots__ = ("codes",)

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, values: list[str]) -> Codes:
        if not values:
            return np.zeros(0, np.int64)
        local, uniques = pd.factorize(np.array(values, dtype=object), use_na_sentinel=False)
        codes = self.codes
        known = np.fromiter(
            (codes.setdefault(u, len(codes)) for u in uniques.tolist()), np.int64, len(uniques)
        )
        return known[local]

    def names(self) -> Objects:
        """The strings in code order."""
        return np.array(list(self.codes), dtype=object)

    def __len__(self) -> int:
        return len(self.codes)


def concat(parts: list[Ints], dtype: type = np.int64) -> Ints:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def lookup(haystack: Objects, needles: Sequence[str] | Objects) -> Codes:
    """Position of each needle in ``haystack`` (distinct values), -1 where absent."""
    if not len(needles):
        return np.zeros(0, np.int64)
    if not len(haystack):
        return np.full(len(needles), -1, np.int64)
    found = pd.Index(haystack, dtype=object).get_indexer(np.asarray(needles, dtype=object))
    return np.asarray(found, dtype=np.int64)


def _scaled(values: Ints, p: int) -> tuple[Ints | Objects, bool]:
    if p == 0 or not len(values) or int(np.abs(values).max()) < _SAFE:
        return values * p, False
    # Beyond int64 (absurd stock figures): exact Python integers, row by row.
    return values.astype(object) * p, True


def share_floor(values: Ints, p: int) -> Ints:
    """``floor(value * p / 1e6)`` per element (negative values round towards minus infinity)."""
    if p == PER_MILLION:
        return values
    product, big = _scaled(values, p)
    result = product // PER_MILLION
    return np.asarray(result, dtype=np.int64) if big else result


def percent_ceil(values: Ints, p: Ints) -> Ints:
    """``ceil(value * p / 1e6)`` per element, with ``p`` per element."""
    if not len(values):
        return np.zeros(0, np.int64)
    if int(np.abs(values).max()) < _SAFE:
        return -((-values * p) // PER_MILLION)
    product = values.astype(object) * p.astype(object)
    return np.asarray(-((-product) // PER_MILLION), dtype=np.int64)


def group_starts(sorted_keys: Ints) -> Ints:
    """Index of the first element of each run of equal keys in a sorted array."""
    if not len(sorted_keys):
        return np.zeros(0, np.int64)
    return np.concatenate(([0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1))


def counts_by(codes: Codes, n: int) -> Ints:
    """How often each code 0..n-1 occurs."""
    return np.bincount(codes, minlength=n).astype(np.int64, copy=False)


def sums_by(codes: Codes, values: Ints, n: int) -> Ints:
    """Exact int64 sum of ``values`` per code 0..n-1 (bincount would sum in float64)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, codes, values)
    return out


__all__ = [
    "CHUNK",
    "PER_MILLION",
    "Bools",
    "Codebook",
    "Codes",
    "Ints",
    "Objects",
    "concat",
    "counts_by",
    "factorize",
    "group_starts",
    "ints",
    "lookup",
    "per_million",
    "percent_ceil",
    "share_floor",
    "sums_by",
]


def row_of_pair(
    pair: object, sku_index: pd.Index, channel_names: Sequence[str], sorted_keys: Ints
) -> int | None:
    """The row of a (SKU, channel) pair in columns sorted by ``sku * channels + channel``;
    None for anything else (an unknown SKU or channel, or not a pair at all)."""
    if not (isinstance(pair, tuple) and len(pair) == 2):
        return None
    sku, channel = pair
    if channel not in channel_names:
        return None
    found = int(sku_index.get_indexer([sku])[0])
    if found < 0:
        return None
    wanted = found * max(len(channel_names), 1) + channel_names.index(channel)
    row = int(np.searchsorted(sorted_keys, wanted))
    return row if row < len(sorted_keys) and int(sorted_keys[row]) == wanted else None
