"""Pydantic models of the public HTTP API."""
