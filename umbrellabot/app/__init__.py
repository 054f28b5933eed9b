"""The running application: `wiring.py` (the only place that turns Settings into adapters), the
process's services, the ingest cycle, the daemon runtime (scheduler, signals), health and metrics,
logging, and console delivery with its rich rendering."""
