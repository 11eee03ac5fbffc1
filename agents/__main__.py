"""``python -m offload_agents``: the ``offload-gym`` command line."""

from offload_agents.cli import main

raise SystemExit(main())
