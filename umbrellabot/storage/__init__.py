"""Ports and adapters for durable things: `ports.py` (the protocols), the S3 and local-folder
object stores, discovery of a trail's folders, and the SQLite state. Imports `rules` and `model`;
never `enrich`."""
