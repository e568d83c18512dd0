"""``charterflow migrate --phase``: expand revisions run before a rollout, contract ones after.

The planning is checked on a small made-up history; the CLI on the real one (SQLite).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from charterflow import contract
from charterflow.db import alembic_config, make_engine
from charterflow.ops import LifecycleError
from charterflow.ops.migrate import phase_target, revision_phase
from charterflow.settings import Settings

from tests.lifecycle.conftest import CLI

REVISION = '''"""{name}

Revision ID: {rev}
Phase: {phase}
"""

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
'''


def history(tmp_path: Path, *phases: str) -> ScriptDirectory:
    """Revisions r1, r2, ... in a line, with these phases ("" writes no Phase line)."""
    versions = tmp_path / "versions"
    versions.mkdir()
    for i, phase in enumerate(phases, 1):
        text = REVISION.format(name=f"step {i}", rev=f"r{i}", down=f"r{i - 1}" if i > 1 else None,
                               phase=phase)  # fmt: skip
        if not phase:
            text = text.replace("Phase: \n", "")
        (versions / f"r{i}.py").write_text(text)
    return ScriptDirectory(str(tmp_path))


def test_expand_stops_before_the_first_contract_revision(tmp_path: Path) -> None:
    scripts = history(tmp_path, "expand", "", "contract", "contract")
    assert revision_phase(scripts.get_revision("r2")) == "expand"  # the default
    assert phase_target(scripts, None, "expand") == "r2"
    assert phase_target(scripts, "r1", "expand") == "r2"
    assert phase_target(scripts, "r2", "expand") == "r2"  # nothing to do before the rollout
    assert phase_target(scripts, "r2", "contract") == "r4"
    assert phase_target(scripts, "r2", "all") == "r4"
    assert phase_target(scripts, "r4", "expand") == "r4"


def test_expand_refuses_an_expand_revision_after_a_contract_one(tmp_path: Path) -> None:
    scripts = history(tmp_path, "expand", "contract", "expand")
    with pytest.raises(LifecycleError, match="r3 come after contract revision r2"):
        phase_target(scripts, "r1", "expand")
    assert phase_target(scripts, "r2", "expand") == "r3"  # once the contract ran, fine


def test_an_unknown_phase_is_an_error(tmp_path: Path) -> None:
    scripts = history(tmp_path, "expand", "shrink")
    with pytest.raises(LifecycleError, match="r2: Phase must be expand or contract"):
        phase_target(scripts, None, "expand")


def _real_scripts(tmp_path: Path) -> ScriptDirectory:
    engine = make_engine(Settings(_env_file=None, database_url=f"sqlite:{tmp_path}/x.db"))
    try:
        return ScriptDirectory.from_config(alembic_config(engine))
    finally:
        engine.dispose()


def test_every_real_revision_declares_its_phase(tmp_path: Path) -> None:
    for script in _real_scripts(tmp_path).walk_revisions():
        assert "\nPhase: " in (script.module.__doc__ or ""), script.path
        assert revision_phase(script) in ("expand", "contract")


def test_migrate_phases_through_the_cli(tmp_path: Path) -> None:
    scripts = _real_scripts(tmp_path)
    env = {"DATABASE_URL": f"sqlite:{tmp_path}/app.db", "PATH": "/usr/bin:/bin"}

    def migrate(phase: str) -> str:
        done = subprocess.run(
            [str(CLI), "migrate", "--phase", phase],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().rsplit(" ", 1)[1]

    assert migrate("expand") == phase_target(scripts, None, "expand")
    assert migrate("contract") == scripts.get_current_head()


def test_an_unreachable_database_is_reported_as_an_outage(tmp_path: Path) -> None:
    """Nothing listens on the port: the last line names the dependency (the operator reads it
    from the Job pod and retries later), and the exit code says "try again"."""
    with socket.socket() as sock:  # a port that was free a moment ago, closed again
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://cf:cf@127.0.0.1:{port}/cf?connect_timeout=2"
    done = subprocess.run(
        [str(CLI), "migrate", "--phase", "expand"],
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == contract.EXIT_UNAVAILABLE, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == "charterflow migrate: dependency unavailable: database (OperationalError)"
