"""Shared fixtures (kept in their own modules and registered here)."""

pytest_plugins = ["report_fixtures"]
