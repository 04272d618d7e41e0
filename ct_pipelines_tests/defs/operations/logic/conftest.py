from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.store import IntegrationStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntegrationStore]:
    integration_store = IntegrationStore(f"sqlite:///{tmp_path / 'ops_store.db'}")
    integration_store.migrate()
    yield integration_store
    integration_store.close()
