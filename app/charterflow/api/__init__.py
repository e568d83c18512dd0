"""HTTP layer: routers per resource, dependencies for sessions and auth."""
