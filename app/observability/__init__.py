"""Metrics (defined once, bounded labels) and request-id logging."""
