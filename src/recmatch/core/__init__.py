"""Settings, domain errors, the Elasticsearch client and index names, the shared input models."""
