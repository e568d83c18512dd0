"""spec.llm (children/config.py, instance.py, children/networking.py): the model server's URL,
name and timeouts reach the API and the worker through the ConfigMap, its keys only as
``secretKeyRef``, and the egress NetworkPolicy opens its port; without spec.llm, nothing."""

from __future__ import annotations

from typing import Any

from charterflow_operator import children
from charterflow_operator.instance import CharterFlow, referenced_secret_names

from tests.unit.operator.conftest import SECRETS, deployment, everything, respec

LLM = {
    "url": "http://llama.models:8081/v1",
    "model": "smollm2-135m-instruct",
    "apiKeySecretRef": {"name": "charterflow-llm"},
    "timeoutSeconds": 30,
    "connectTimeoutSeconds": 3,
    "maxTokens": 256,
    "embeddings": {
        "url": "https://embed.example.com:8443/v1",
        "model": "all-minilm",
        "apiKeySecretRef": {"name": "charterflow-embed", "key": "token"},
        "timeoutSeconds": 20,
    },
}
KEYS = {"charterflow-llm": {"apiKey": "c2stbGxt"}, "charterflow-embed": {"token": "c2stZW1i"}}


def _config(cf: CharterFlow) -> dict[str, str]:
    return next(m for m in everything(cf) if m["kind"] == "ConfigMap")["data"]


def _env(cf: CharterFlow, component: str) -> dict[str, Any]:
    desired = children.build(cf, {**SECRETS, **KEYS})
    name = cf.component_name(component)
    (found,) = [m for m in desired.workloads if m["metadata"]["name"] == name]
    (container,) = found["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_without_spec_llm_answers_stay_extracts(cf: CharterFlow) -> None:
    config = _config(cf)
    assert not {k for k in config if k.startswith(("LLM_", "EMBEDDINGS_"))}
    (container,) = deployment(cf, "api")["spec"]["template"]["spec"]["containers"]
    assert not {e["name"] for e in container["env"]} & {"LLM_API_KEY", "EMBEDDINGS_API_KEY"}


def test_spec_llm_reaches_the_api_and_the_worker(cf: CharterFlow) -> None:
    with_llm = respec(cf, llm=LLM)
    config = _config(with_llm)
    assert {k: v for k, v in config.items() if k.startswith(("LLM_", "EMBEDDINGS_"))} == {
        "LLM_URL": "http://llama.models:8081/v1",
        "LLM_MODEL": "smollm2-135m-instruct",
        "LLM_TIMEOUT_SECONDS": "30",
        "LLM_CONNECT_TIMEOUT_SECONDS": "3",
        "LLM_MAX_TOKENS": "256",
        "EMBEDDINGS_URL": "https://embed.example.com:8443/v1",
        "EMBEDDINGS_MODEL": "all-minilm",
        "EMBEDDINGS_TIMEOUT_SECONDS": "20",
    }
    for component in ("api", "worker"):
        env = _env(with_llm, component)
        assert env["LLM_API_KEY"] == {
            "name": "LLM_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "charterflow-llm", "key": "apiKey"}},
        }
        assert env["EMBEDDINGS_API_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "charterflow-embed",
            "key": "token",
        }
    # The keys' values are nowhere in what the operator applies (only their Secrets' names).
    rendered = repr(children.build(with_llm, {**SECRETS, **KEYS}))
    assert "c2stbGxt" not in rendered


def test_timeouts_and_keys_are_optional(cf: CharterFlow) -> None:
    bare = respec(cf, llm={"url": "http://ollama:11434/v1", "model": "llama3.1:8b"})
    config = _config(bare)
    assert config["LLM_URL"] == "http://ollama:11434/v1"
    assert "LLM_TIMEOUT_SECONDS" not in config  # the application's default (60 s) applies
    assert "EMBEDDINGS_URL" not in config  # the built-in embedder
    assert "LLM_API_KEY" not in _env(bare, "api")


def test_the_keys_are_checked_secrets(cf: CharterFlow) -> None:
    """A missing key Secret reads MissingSecret naming the field, and rotating it rolls pods."""
    with_llm = respec(cf, llm=LLM)
    fields = {ref.env: ref.field for ref in with_llm.secret_refs()}
    assert fields["LLM_API_KEY"] == "spec.llm.apiKeySecretRef"
    assert fields["EMBEDDINGS_API_KEY"] == "spec.llm.embeddings.apiKeySecretRef"
    names = referenced_secret_names("charterflow", with_llm.spec)
    assert {"charterflow-llm", "charterflow-embed"} <= names


def test_egress_opens_the_model_servers_ports(cf: CharterFlow) -> None:
    built = children.build(respec(cf, llm=LLM), {**SECRETS, **KEYS})
    found = {m["metadata"]["name"]: m["spec"] for m in built.base if m["kind"] == "NetworkPolicy"}
    for name in ("charterflow-api", "charterflow-worker"):
        models = found[name]["egress"][-1]
        assert [p["port"] for p in models["ports"]] == [8081, 8443]
    jobs = found["charterflow-jobs"]["egress"]
    assert all(8081 not in [p["port"] for p in rule["ports"]] for rule in jobs)
