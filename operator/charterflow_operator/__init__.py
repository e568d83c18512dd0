"""The CharterFlow Kubernetes operator (Kopf)."""
