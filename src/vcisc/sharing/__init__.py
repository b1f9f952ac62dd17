"""Standards at the boundary: observables, STIX 2.1, MISP (DOMAIN.md §5–§8).

This package is the *pure* standards layer: plain, typed functions over frozen dataclasses, with
no Django models and no I/O beyond what the libraries need. The database, API and TAXII layers
feed it snapshots built from rows and store what it returns.

* :mod:`vcisc.sharing.observables` — indicator types, normalisation, correlation keys.
* :mod:`vcisc.sharing.extract` — indicators found in free text (ioc-finder), normalised.
* :mod:`vcisc.sharing.stix` — TLP markings, bundle export and streaming, validating import.
* :mod:`vcisc.sharing.misp` — MISP event export/import, feeds, the TLP → distribution table.
* :mod:`vcisc.sharing.reports` — the per-object error report shared by every importer.
"""

from __future__ import annotations
