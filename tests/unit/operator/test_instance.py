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


def test_sso_email_and_key_rotation_become_env_and_secret_refs() -> None:
    import yaml
    from charterflow import contract
    from charterflow_operator.children.config import config_data

    from tests.unit.operator.conftest import REPO

    body = yaml.safe_load((REPO / "manifests/samples/charterflow-sso.yaml").read_text())
    cf = CharterFlow.from_body(
        {**body, "metadata": {**body["metadata"], "namespace": "t", "uid": "u"}}
    )
    refs = {r.env: (r.name, r.key) for r in cf.secret_refs()}
    assert refs[contract.OIDC_CLIENT_SECRET] == ("charterflow-oidc", "clientSecret")
    assert refs[contract.SMTP_PASSWORD] == ("charterflow-smtp", "password")
    assert refs[contract.SMTP_USERNAME] == ("charterflow-smtp", "username")
    assert refs[contract.JWT_PREVIOUS_SECRETS] == ("charterflow-jwt-keys", "previous")
    config = config_data(cf)
    assert config[contract.OIDC_ISSUER] == "https://login.example.com/dex"
    assert config[contract.OIDC_ALLOWED_DOMAINS] == "example.com"
    assert config[contract.PASSWORD_LOGIN_ENABLED] == "false"
    assert config[contract.SMTP_PORT] == "587"
    secret_values = {"change-me-oidc-client-secret", "change-me-smtp-password"}
    assert not secret_values & set(config.values())  # secrets never in the ConfigMap


def test_without_sso_or_email_no_identity_secrets_are_needed() -> None:
    cf = CharterFlow("x", "t", "u", with_defaults(MINIMAL))
    envs = {r.env for r in cf.secret_refs()}
    assert not envs & {"OIDC_CLIENT_SECRET", "SMTP_PASSWORD", "JWT_PREVIOUS_SECRETS"}
    assert "oidc" not in cf.spec["auth"]
    assert "email" not in cf.spec or "smtp" not in cf.spec["email"]
