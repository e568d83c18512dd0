"""Documentation that is generated from code must match the code."""

from __future__ import annotations

from pathlib import Path

from charterflow.configdoc import render
from charterflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date() -> None:
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    assert on_disk == render(), "docs/configuration.md is stale: run `make docs`"


def test_every_design_environment_name_is_a_setting() -> None:
    """The deployment contract fixes these names (docs/configuration.md); each must be read by
    the settings object."""
    contract = {
        "DATABASE_URL", "JWT_SECRET", "UPLOAD_PATH", "PORT", "REDIS_URL", "S3_BUCKET",
        "S3_REGION", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "APP_URL",
        "CORS_ORIGINS", "CHARTERFLOW_ENV", "LOG_LEVEL", "LOG_FORMAT",
    }  # fmt: skip
    assert contract <= {name.upper() for name in Settings.model_fields}
