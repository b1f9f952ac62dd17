"""Federation feeds: MISP feeds pulled into the federation, correlated with engagements (issue 5).

A feed is a set of indicators every member and partner of the federation may read (TLP:CLEAR or
TLP:GREEN: AMBER and RED material never leaves an engagement), pulled from a MISP feed
(``manifest.json`` + one ``<uuid>.json`` per event) or uploaded. When a value of a feed is also
in an engagement, a :class:`~vcisc.feeds.models.FeedMatch` is recorded and those who may read
the engagement's indicator are told. VCISC also serves a MISP-format feed of what each caller
may read (:mod:`vcisc.feeds.served`), for a nation's own MISP to pull.
"""
