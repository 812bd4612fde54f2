"""Runs the storage conformance suite against every backend of `conftest.BACKENDS`."""

from tests.storage.conformance import *  # noqa: F403
