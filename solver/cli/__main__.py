"""``python -m solver.cli`` runs the CLI."""

from solver.cli import entry

entry()
