"""Render docs/configuration.md from the settings objects (the application's ``Settings`` and
the operator's ``OperatorConfig``), so the reference cannot drift.

``make docs`` rewrites the file; a unit test fails when it is out of date.
"""

from __future__ import annotations

from charterflow_operator.config import reference as operator_reference
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


OPERATOR_HEADER = """
## Operator

`charterflow-operator` reads these (generated from `operator/charterflow_operator/config.py`;
`charterflow-operator --help` lists them too). The Helm chart sets them from its values:
`watchNamespaces`, `logLevel`, `resyncSeconds`, `failoverSeconds` (the peering lifetime),
`workers`, `healthPort` and `metrics.port`; the peering name and `POD_NAME` it sets itself.

| Variable | Default | Description |
|---|---|---|
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{name.upper()}` | {_default(default)} | {field.description or ''} |")
    operator = [f"| `{env}` | {default} | {text} |" for env, default, text in operator_reference()]
    return HEADER + "\n".join(rows) + "\n" + OPERATOR_HEADER + "\n".join(operator) + "\n"


if __name__ == "__main__":
    print(render(), end="")
