"""Candidate documents, the zero-downtime reindex, live upsert and erase, cluster locks."""
