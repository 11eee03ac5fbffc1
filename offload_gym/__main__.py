"""``python -m offload_gym``: the ``offload-gym`` command line."""

from offload_gym.cli import main

raise SystemExit(main())
