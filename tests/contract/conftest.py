"""The ``store`` fixture: every VectorStore backend, each test on a fresh, isolated store.

* ``embedded``      — EmbeddedStore in tmp_path with its defaults (small collections are scanned exactly).
* ``embedded-ann``  — the same with ``exact_below=0``, so from 16 faces on the IVF index + exact re-scoring
                      path must meet the same contract.
* ``opensearch``    — OpenSearchStore against the session ``opensearch_url`` fixture from
                      tests/opensearch_fixture.py (imported only when this param runs, so the other backends
                      need neither opensearch-py nor a server); a unique index prefix per test, and every
                      collection it made is deleted afterwards. Deselect with ``-m "not opensearch"``.
* ``opensearch-ann`` — the same with ``exact_filter_below=-1``: the k-NN query without the exact-scan
                      filter, as collections above 20k faces run it.

Speed, set deliberately: the embedded stores run faiss on one thread (``faiss_threads=1``, the product's
default; with faiss' own default, a thread per core, the embedded-store tests took 211 s instead of 12 s on
the 2 shared cores), and the OpenSearch stores refresh on every write (``refresh="true"``) instead of
waiting for the next scheduled refresh (``wait_for``, up to 1 s per write: ~170 s instead of 48 s for these
tests). Both keep every guarantee the suite checks; a test that requests the ``deployed_refresh`` fixture
gets the deployed ``wait_for`` policy, so that policy's "searchable on return" is still tested.
"""

from __future__ import annotations

import contextlib
import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facesearch.store.base import VectorStore

OPENSEARCH_FIXTURE = Path(__file__).resolve().parents[1] / "opensearch_fixture.py"
_PLUGIN_NAME = "facesearch-opensearch-fixture"


def _opensearch_url(request: pytest.FixtureRequest) -> str:
    """The ``opensearch_url`` session fixture, registering tests/opensearch_fixture.py on first use."""
    pm = request.config.pluginmanager
    if pm.get_plugin(_PLUGIN_NAME) is None:
        try:  # already provided (e.g. by a conftest's pytest_plugins)?
            return request.getfixturevalue("opensearch_url")
        except pytest.FixtureLookupError:
            pass
        if not OPENSEARCH_FIXTURE.is_file():
            pytest.fail(f"{OPENSEARCH_FIXTURE} does not exist")
        spec = importlib.util.spec_from_file_location("tests_opensearch_fixture", OPENSEARCH_FIXTURE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        pm.register(module, _PLUGIN_NAME)
    return request.getfixturevalue("opensearch_url")


@pytest.fixture
def deployed_refresh() -> None:
    """Requested by a test that must run with the OpenSearch store's deployed refresh policy (``wait_for``)."""


@pytest.fixture(
    params=[
        "embedded",
        "embedded-ann",
        pytest.param("opensearch", marks=pytest.mark.opensearch),
        pytest.param("opensearch-ann", marks=pytest.mark.opensearch),
    ],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    if request.param.startswith("embedded"):
        from facesearch.store.embedded import EmbeddedStore

        tuning: dict[str, Any] = {"exact_below": 0} if request.param == "embedded-ann" else {}
        embedded = EmbeddedStore(tmp_path / "store", faiss_threads=1, **tuning)
        try:
            yield embedded
        finally:
            embedded.close()
        return

    from facesearch.store.opensearch import OpenSearchStore

    url = _opensearch_url(request)

    options: dict[str, Any] = {"exact_filter_below": -1} if request.param == "opensearch-ann" else {}
    options["refresh"] = "wait_for" if "deployed_refresh" in request.fixturenames else "true"
    remote = OpenSearchStore(url, index_prefix=f"fstest-{uuid.uuid4().hex[:12]}-", **options)
    try:
        yield remote
    finally:
        try:
            for record in remote.list_collections():
                with contextlib.suppress(Exception):
                    remote.delete_collection(record.collection_id)
        finally:
            remote.close()
