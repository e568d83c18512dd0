"""SQLAlchemy models (the API issue fills these in)."""
