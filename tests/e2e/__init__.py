"""End-to-end tests: openline and real bots as subprocesses, driven over HTTP."""
