"""The HTTP layer: thin routes, one place where errors become HTTP."""
