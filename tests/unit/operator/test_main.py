"""The operator's entry point parses WATCH_NAMESPACES as documented."""

import pytest
from charterflow_operator.__main__ import main, peering_priority, watch_namespaces


def test_watch_namespaces() -> None:
    assert watch_namespaces("") == []
    assert watch_namespaces(" a, b,,c ") == ["a", "b", "c"]


def test_replicas_of_one_deployment_get_distinct_stable_priorities() -> None:
    pods = [f"charterflow-operator-7d9f8c-{suffix}" for suffix in ("x2kq9", "p8wzt", "m4n7c")]
    priorities = [peering_priority({"POD_NAME": pod}) for pod in pods]
    assert len(set(priorities)) == len(pods)
    assert all(p > 0 for p in priorities)
    assert priorities == [peering_priority({"POD_NAME": pod}) for pod in pods]


def test_explicit_priority_wins_and_no_pod_name_means_default() -> None:
    assert peering_priority({"OPERATOR_PRIORITY": "100", "POD_NAME": "x"}) == 100
    assert peering_priority({}) == 0


def test_help_describes_the_environment_without_starting_kopf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "WATCH_NAMESPACES" in capsys.readouterr().out
