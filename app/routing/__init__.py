"""Routing: which models answer a request, as pure functions of the request and the catalogue."""
