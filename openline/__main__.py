"""`python -m openline` runs the command line, like the `openline` script."""

from openline.cli import main

raise SystemExit(main())
