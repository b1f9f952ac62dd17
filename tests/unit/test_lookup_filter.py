"""The correlation look-up's in-process Bloom filter (vcisc.engagements.lookup._Filter): every
key added passes, whatever its sign or size; absent keys mostly do not."""

from __future__ import annotations

import random

import numpy as np

from vcisc.engagements.lookup import _Filter


def _keys(rng: random.Random, count: int) -> np.ndarray:
    extremes = [0, 1, -1, 2**63 - 1, -(2**63), 2**32, -(2**32)]
    drawn = [rng.randrange(-(2**63), 2**63) for _ in range(count)]
    return np.array(extremes + drawn, dtype=np.int64)


def test_every_added_key_passes_and_most_absent_ones_do_not() -> None:
    rng = random.Random(5)
    stored = _keys(rng, 50_000)
    found = _Filter.empty(len(stored), watermark=0, identity=())
    found.add(stored[:20_000])  # an array
    found.add(int(k) for k in stored[20_000:])  # Python ints, as learned rows are
    assert found.keys == len(stored)
    assert np.array_equal(found.passing(stored), stored)
    absent = np.array([rng.randrange(-(2**63), 2**63) for _ in range(50_000)], dtype=np.int64)
    absent = absent[~np.isin(absent, stored)]
    false_maybes = len(found.passing(absent)) / len(absent)
    assert false_maybes < 0.02, false_maybes  # two bits a key, 16 bits a key: about 1.4 %


def test_an_empty_filter_lets_nothing_through() -> None:
    found = _Filter.empty(0, watermark=0, identity=())
    found.add([])
    assert len(found.passing(_keys(random.Random(1), 1000))) == 0
