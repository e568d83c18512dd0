"""Request and response bodies of the API (kept apart from the database models)."""
