"""A record and a file through the rules: the streaming log reader and the enriched writer
(file objects in, never paths), enrichment, the worker processes and the geo-IP adapters.
Imports `rules` and `model`; never `storage` (the two are independent)."""
