"""A TAXII 2.1 server at ``/taxii2/`` (OASIS TAXII 2.1, DOMAIN.md §7; issue 5 part 3).

One module per area of the specification, as medallion lays it out:

========================  =================================================================
module                    TAXII 2.1
========================  =================================================================
``media.py``              §1.6.8 media types, §3.4 filtering, §3.5 pagination, §3.6 headers
``errors.py``             §3.6.1 the error message
``auth.py``               §1.6.9 authentication (a VCISC bearer token, or a console session)
``scopes.py``             which collections a user may read or write (through vcisc.authz)
``store.py``              object rows: materialising engagement items, adding, deleting
``discovery.py``          §4.1 server discovery, §4.2 API root information
``status.py``             §4.3 status resources
``collections.py``        §5.1 collections, §5.2 one collection
``objects.py``            §5.3 manifest, §5.4 get/add objects, §5.5–§5.7 one object, versions
========================  =================================================================

What a client reads is decided by :mod:`vcisc.authz`, exactly as for the API: an engagement's
collection exists for its participants only, and its TLP:RED objects reach the named members
only (the same :func:`vcisc.authz.item_filter` is applied to the object rows).
"""
