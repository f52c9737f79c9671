"""Operating recmatch: observability, the local Elasticsearch node, Kibana and the CLI."""
