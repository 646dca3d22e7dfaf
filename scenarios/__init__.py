"""Scenario and policy files: loading with line-accurate errors, and the built-in library."""
