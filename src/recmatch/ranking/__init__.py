"""PURE: understanding a pipeline, the query builder, reasons and the learner; no I/O."""
