"""Workflow and activity files written for the Temporal Python SDK, ported
to Caisson by changing their import lines (see README.md)."""
