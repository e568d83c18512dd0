"""CharterFlow: a document-grounded team workspace."""

__version__ = "0.1.0"
