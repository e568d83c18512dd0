"""``charterflow migrate --phase``: the expand revisions before a rollout (old pods still run),
the contract ones after it. A revision's phase is the ``Phase:`` line of its docstring."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

from charterflow import contract
from charterflow.ops import LifecycleError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import Engine

_PHASE_LINE = re.compile(r"^Phase:\s*(?P<phase>\S+)\s*$", re.MULTILINE)
PHASES = contract.MIGRATION_PHASES


def revision_phase(script: Script) -> str:
    """A revision's phase, from the ``Phase:`` line of its docstring (default ``expand``)."""
    match = _PHASE_LINE.search(script.module.__doc__ or "")
    phase = match["phase"] if match else "expand"
    if phase not in PHASES:
        raise LifecycleError(
            f"migration {script.revision}: Phase must be expand or contract, not {phase!r}"
        )
    return phase


def phase_target(scripts: ScriptDirectory, current: str | None, phase: str) -> str | None:
    """The revision ``migrate --phase`` upgrades to from ``current``.

    ``expand`` stops before the first pending contract revision (old pods still run and must
    keep working); ``contract`` and ``all`` go to head. An expand revision pending after a
    contract one cannot be applied safely before the rollout, and is refused.
    """
    if phase != "expand":
        return scripts.get_current_head()
    if len(scripts.get_heads()) > 1:
        raise LifecycleError("the migration history has several heads: merge them first")
    history = list(reversed(list(scripts.walk_revisions())))
    ids = [s.revision for s in history]
    pending = history[ids.index(current) + 1 :] if current else history
    target = current
    for i, script in enumerate(pending):
        if revision_phase(script) == "contract":
            later = [s.revision for s in pending[i + 1 :] if revision_phase(s) == "expand"]
            if later:
                raise LifecycleError(
                    f"expand revision(s) {', '.join(later)} come after contract revision "
                    f"{script.revision}: move contract revisions to the end of a release"
                )
            break
        target = script.revision
    return target


def migrate_phase(engine: Engine, phase: str) -> str | None:
    """Run the migrations of ``phase`` (``expand`` | ``contract`` | ``all``); returns the
    revision the database is at. A database newer than this code is left alone (a rollback
    after an expand-only upgrade), with a warning."""
    from alembic.script import ScriptDirectory

    from charterflow.db import alembic_config, current_revision, migrate

    scripts = ScriptDirectory.from_config(alembic_config(engine))
    current = current_revision(engine)
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        print(
            f"warning: the database is at revision {current}, newer than this version knows "
            f"(head {scripts.get_current_head()}); leaving it as it is",
            file=sys.stderr,
        )
        return current
    target = phase_target(scripts, current, phase)
    if target is not None and target != current:
        migrate(engine, target)
    return current_revision(engine)
