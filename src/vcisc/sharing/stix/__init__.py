"""STIX 2.1 (OASIS, 10 June 2021): TLP markings, export of an engagement, validating import.

One module per spec area, as in medallion: :mod:`.markings` (§7.2 data markings and the TLP 2.0
extension), :mod:`.ids` (§2.9 identifiers), :mod:`.patterns` (§9 patterning), :mod:`.export`
(bundles, §8), :mod:`.importer` (parsing and validating bundles, streamed).
"""

from __future__ import annotations
