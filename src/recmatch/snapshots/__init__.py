"""Snapshots: the ranked list of a pipeline version on a day, kept for stable paging and tomorrow's "new".

The owner of the snapshots index.
"""
