"""The CharterFlow object: defaults of a partial spec, the Secrets it references."""

from __future__ import annotations

from charterflow_operator.instance import (
    CharterFlow,
    referenced_secret_names,
    with_defaults,
)

from tests.unit.operator.conftest import respec

MINIMAL = {
    "version": "1.0.0",
    "appUrl": "https://x.example",
    "database": {"urlSecretRef": {"name": "db"}},
    "redis": {"urlSecretRef": {"name": "r"}},
    "storage": {"s3": {"bucket": "b"}},
}


def test_defaults_fill_a_minimal_spec() -> None:
    spec = with_defaults({**MINIMAL, "worker": {"resources": {"limits": {"cpu": "3"}}}})
    assert spec["database"]["urlSecretRef"] == {"name": "db", "key": "url"}
    assert spec["api"]["replicas"] == 2
    assert spec["worker"]["resources"] == {"limits": {"cpu": "3"}}  # a given map is not merged
    assert "credentialsSecretRef" not in spec["storage"]["s3"]
    assert "jwtSecretRef" not in spec["auth"]


def test_explicit_jwt_secret_is_used(cf: CharterFlow) -> None:
    mine = respec(cf, auth__jwtSecretRef={"name": "my-jwt", "key": "k"})
    assert referenced_secret_names(mine.name, mine.spec) >= {"my-jwt"}
    assert "charterflow-jwt" not in referenced_secret_names(mine.name, mine.spec)


def test_migration_defaults_without_a_restore() -> None:
    minimal = with_defaults(MINIMAL)
    assert minimal["migrations"]["backoffLimit"] == 1
    assert "restore" not in minimal
