"""`python -m recmatch`: the recmatch CLI."""

from recmatch.ops.cli import app

app(prog_name="recmatch")
