from charterflow.cli import main

raise SystemExit(main())
