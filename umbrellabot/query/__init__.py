"""The enriched history: logical queries, the Athena table DDL and setup, the Athena and DuckDB
engines, the SQL detections (model, window planning, runs), event lookup and the story of an
event. Imports `storage`, `enrich`, `rules`, `model`."""
