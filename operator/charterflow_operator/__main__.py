"""``charterflow-operator``: run the Kopf operator with the settings of ``OperatorConfig``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from charterflow_operator.config import OperatorConfig, help_text


def main(argv: Sequence[str] | None = None) -> None:
    """Run the operator until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="charterflow-operator",
        description="Run the CharterFlow operator (Kopf). Configured by environment variables:",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)

    import kopf
    from kopf._cogs.structs.references import Insights

    from charterflow_operator import handlers  # noqa: F401 - importing registers the handlers
    from charterflow_operator.leadership import IDENTITY

    config = OperatorConfig.from_env()
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    insights = Insights()  # Kopf's set of served namespaces, which namespaces.py corrects
    kopf.run(
        memo=kopf.Memo(insights=insights),
        insights=insights,
        clusterwide=not config.watch_namespaces,
        namespaces=list(config.watch_namespaces),
        standalone=True if config.standalone else None,
        peering_name=config.peering,
        priority=config.priority,
        identity=IDENTITY,  # the one leadership.py looks for in the peering object
        liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
