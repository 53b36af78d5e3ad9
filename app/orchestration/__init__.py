"""Orchestration: how the planned models are called (fallbacks, parallel patterns, deadlines)."""
