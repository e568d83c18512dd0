"""Render docs/configuration.md from the settings object, so the reference cannot drift.

``make docs`` rewrites the file; a unit test fails when it is out of date.
"""

from __future__ import annotations

from pydantic import SecretStr

from charterflow.settings import Settings

HEADER = """# Configuration reference

CharterFlow reads its configuration from environment variables (and an optional `.env` file in
the working directory). This page is generated from `app/charterflow/settings.py` by
`make docs`; a test fails when it is out of date.

`charterflow check` validates the configuration and prints each problem as `NAME: why`
(exit code 2). In `production` the API refuses to start on any such problem.

| Variable | Default | Description |
|---|---|---|
"""


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "`" + value.get_secret_value() + "` (development only)"
    if isinstance(value, list):
        return "empty" if not value else ", ".join(map(str, value))
    return f"`{value}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{name.upper()}` | {_default(default)} | {field.description or ''} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
