"""MISP interoperability (MISP core format, draft-dulaunoy-misp-core-format; DOMAIN.md §8).

:mod:`.distribution` — TLP tags and the TLP → widest-distribution table; :mod:`.export` —
engagement indicators as a MISP event and a MISP feed; :mod:`.importer` — MISP event JSON and
feeds (manifest + event files), type/category pairs checked against PyMISP's describeTypes.
"""

from __future__ import annotations
