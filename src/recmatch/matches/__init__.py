"""The list service: rank, relax, snapshots and the daily refresh."""
