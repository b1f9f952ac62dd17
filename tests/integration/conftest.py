"""Fixtures of the end-to-end tests that run `vcisc` in real processes (see serving.py)."""

from __future__ import annotations

import pytest

from tests.integration.serving import DemoData, environment, run


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    """A data directory that `vcisc migrate` and `vcisc demo` (real processes) prepared, once:
    each module that serves the demo starts from a copy (migrating and loading took seconds)."""
    data = tmp_path_factory.mktemp("demo-template")
    env = environment(data)
    run(env, "migrate")
    run(env, "demo", "--quiet")
    return DemoData(data)
