"""The web console: server-rendered pages over the same rules as the API (STYLE.md layout)."""
