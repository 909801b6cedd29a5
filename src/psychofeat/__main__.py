"""`python -m psychofeat` runs the command-line interface."""

from psychofeat.cli import main

raise SystemExit(main())
