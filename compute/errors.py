"""Errors of the compute stages that carry no heavy imports, for the CLI to catch."""


class TrialError(RuntimeError):
    """A trial failed on every draw it was given."""
