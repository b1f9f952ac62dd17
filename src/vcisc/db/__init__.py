"""Database backends of VCISC (see :mod:`vcisc.db.sqlite3`)."""
