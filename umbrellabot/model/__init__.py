"""Pure shared types: Severity, the record view (dotted paths, principal, account), the facts
of an event, Alert and its dedup key, CloudTrail's S3 key layout, the enriched record's columns and
the cycle report. Imports nothing else of umbrellabot; does no I/O."""
