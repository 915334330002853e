"""OpenSearchStore configuration, mapping and naming: no server needed (the behaviour is in tests/contract)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import requests

from facesearch.errors import InvalidParameterException
from facesearch.store.opensearch import OpenSearchStore
from facesearch.store.records import CollectionRecord

LOCAL = "http://127.0.0.1:9200"
AWS = "https://search-faces-abc123.eu-west-1.es.amazonaws.com"


def record(cid: str = "c1") -> CollectionRecord:
    return CollectionRecord(cid, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "m-1", 90.0, False)


def static_credentials():
    from botocore.credentials import Credentials

    return Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def test_mapping_names_the_lucene_engine_hnsw_l2_dimension_128() -> None:
    body = OpenSearchStore(LOCAL)._index_body(record())
    vector = body["mappings"]["properties"]["vector"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == 128
    assert vector["method"]["name"] == "hnsw"
    assert vector["method"]["engine"] == "lucene"  # faiss is the default and would crash the local node
    assert vector["method"]["space_type"] == "l2"
    assert body["settings"]["index"]["knn"] is True
    assert body["settings"]["index"]["number_of_replicas"] == 0  # loopback: a single node
    assert body["mappings"]["dynamic"] == "strict"
    assert body["mappings"]["_meta"]["collection_id"] == "c1"


def test_faiss_is_refused_without_aws() -> None:
    with pytest.raises(InvalidParameterException, match="faiss"):
        OpenSearchStore(LOCAL, engine="faiss")
    with pytest.raises(InvalidParameterException):
        OpenSearchStore(LOCAL, engine="nmslib")


def test_aws_uses_sigv4_https_and_may_use_faiss() -> None:
    store = OpenSearchStore(AWS, aws_region="eu-west-1", aws_credentials=static_credentials(), engine="faiss")
    body = store._index_body(record())
    assert body["mappings"]["properties"]["vector"]["method"]["engine"] == "faiss"
    assert body["settings"]["index"]["number_of_replicas"] == 1
    conn = store.client.transport.connection_pool.connections[0]
    request = requests.Request("GET", f"{AWS}/_cluster/health").prepare()
    signed = conn.session.auth(request)
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in signed.headers["Authorization"]
    with pytest.raises(InvalidParameterException, match="https"):
        OpenSearchStore(
            "http://search-x.eu-west-1.es.amazonaws.com", aws_region="eu-west-1", aws_credentials=static_credentials()
        )
    with pytest.raises(InvalidParameterException, match="aws_service"):
        OpenSearchStore(AWS, aws_region="eu-west-1", aws_service="aoss", aws_credentials=static_credentials())


def test_plain_http_only_on_loopback() -> None:
    for url in ("http://127.0.0.1:9200", "http://localhost:9200", "http://[::1]:9200"):
        OpenSearchStore(url)
    with pytest.raises(InvalidParameterException, match="plain HTTP"):
        OpenSearchStore("http://10.0.0.5:9200")
    OpenSearchStore("http://10.0.0.5:9200", allow_insecure_http=True)


def test_index_names_are_valid_and_case_sensitive_ids_stay_distinct() -> None:
    store = OpenSearchStore(LOCAL, index_prefix="facesearch")
    assert store.index_prefix == "facesearch-"
    names = {store._index(cid) for cid in ["A0", "a0", "a_0", "a.0", "a-0", "x" * 255, "_x", "Ünïcode"]}
    assert len(names) == 8
    for name in names:
        assert name == name.lower() and len(name.encode()) <= 255
        assert name.startswith("facesearch-") and not set(name) & set('\\/*?"<>| ,#:')
    with pytest.raises(InvalidParameterException):
        OpenSearchStore(LOCAL, index_prefix="Upper-")


def test_engine_score_converts_back_to_euclidean_distance() -> None:
    store = OpenSearchStore(LOCAL)
    for d in (0.0, 0.25, 0.625, 1.0, 3.5):
        assert store._score_to_distance(1.0 / (1.0 + d * d)) == pytest.approx(d, abs=1e-12)


def test_ef_search_goes_into_the_lucene_query_only_when_wider_than_k() -> None:
    store = OpenSearchStore("http://127.0.0.1:9", ef_search=256, exact_filter_below=-1)
    store._sizes["c"] = (10**6, float("inf"))
    sent: list[dict] = []

    class Client:
        def search(self, index: str, body: dict) -> dict:
            sent.append(body)
            return {"hits": {"hits": []}}

    store.client = Client()  # type: ignore[assignment]
    store._knn("c", np.zeros(128, np.float32), 40)
    store.ef_search = 20
    store._knn("c", np.zeros(128, np.float32), 40)
    assert sent[0]["query"]["knn"]["vector"]["method_parameters"] == {"ef_search": 256}
    assert sent[0]["size"] == 40 and sent[0]["query"]["knn"]["vector"]["k"] == 40
    assert "filter" not in sent[0]["query"]["knn"]["vector"]
    assert "method_parameters" not in sent[1]["query"]["knn"]["vector"]


class ScriptedClient:
    """Answers the k-NN search and the mget of OpenSearchStore.search from a script (no server): each search
    returns ``hits(size)`` and each mget finds a document only while ``present(doc_id)`` says so."""

    def __init__(self, vectors: dict[str, np.ndarray], hits_per_search: list[int], present=lambda doc_id: True):
        self.vectors = vectors
        self.hits_per_search = hits_per_search
        self.present = present
        self.sizes: list[int] = []
        self.mgets = 0

    def search(self, index: str, body: dict) -> dict:
        self.sizes.append(body["size"])
        query = np.asarray(body["query"]["knn"]["vector"]["vector"])
        ranked = sorted(self.vectors, key=lambda i: float(np.sum((self.vectors[i] - query) ** 2)))
        n = self.hits_per_search[min(len(self.sizes), len(self.hits_per_search)) - 1]
        return {
            "hits": {
                "hits": [
                    {"_id": f"face:{i}", "_score": 1.0 / (1.0 + float(np.sum((self.vectors[i] - query) ** 2)))}
                    for i in ranked[: min(n, body["size"])]
                ]
            }
        }

    def mget(self, index: str, body: dict) -> dict:
        self.mgets += 1
        docs = []
        for doc_id in body["ids"]:
            face_id = doc_id.split(":", 1)[1]
            source = {
                "face_id": face_id,
                "image_id": "img",
                "vector": self.vectors[face_id].tolist(),
                "confidence": 99.0,
                "indexed_at": "2024-01-01T00:00:00+00:00",
            }
            found = self.present(doc_id)
            docs.append({"_id": doc_id, "found": found} | ({"_source": source} if found else {}))
        return {"docs": docs}


def scripted_store(client: ScriptedClient) -> OpenSearchStore:
    store = OpenSearchStore("http://127.0.0.1:9", exact_filter_below=-1, client=client)  # type: ignore[arg-type]
    store._sizes["c"] = (10**6, float("inf"))  # a large collection: no count request
    return store


def test_a_search_asks_for_more_candidates_until_the_kth_exact_distance_is_surely_inside() -> None:
    # 200 faces all at distance 1 from the query: with 40 candidates the 10th exact distance equals the farthest
    # candidate's, so faces beyond them could tie or be nearer, and 4 times as many are asked for; that round
    # returns fewer than asked (the engine's recall stops at 150), so nothing more can be had.
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(200, 128))
    vectors = {f"f{i:03d}": (d / np.linalg.norm(d)).astype(np.float32) for i, d in enumerate(directions)}
    client = ScriptedClient(vectors, hits_per_search=[10**6, 150])
    hits = scripted_store(client).search("c", np.zeros(128, np.float32), k=10)
    assert client.sizes == [40, 160]
    assert len(hits) == 10 and all(abs(h.distance - 1.0) < 1e-6 for h in hits)
    exact = sorted((float(np.linalg.norm(v.astype(np.float64))), i) for i, v in vectors.items())
    assert [h.face.face_id for h in hits] == [i for _, i in exact[:10]]  # ties and near-ties by exact order


def test_a_candidate_deleted_between_the_knn_query_and_the_mget_repeats_the_round() -> None:
    vectors = {"a": np.full(128, 0.01, np.float32), "b": np.full(128, 0.02, np.float32)}
    client = ScriptedClient(vectors, hits_per_search=[2])
    client.present = lambda doc_id: client.mgets > 1  # the first mget misses a document
    hits = scripted_store(client).search("c", np.zeros(128, np.float32), k=2)
    assert [h.face.face_id for h in hits] == ["a", "b"] and client.sizes == [40, 40]


def test_a_search_whose_candidates_keep_vanishing_gives_up_after_three_rounds() -> None:
    from facesearch.store.base import SearchCandidatesChanged

    client = ScriptedClient({"a": np.zeros(128, np.float32)}, hits_per_search=[1], present=lambda doc_id: False)
    with pytest.raises(SearchCandidatesChanged):
        scripted_store(client).search("c", np.zeros(128, np.float32), k=1)
    assert client.sizes == [40, 40, 40]


def test_search_arguments_are_checked_before_any_request() -> None:
    client = ScriptedClient({}, hits_per_search=[0])
    store = scripted_store(client)
    for bad in ({"k": 0}, {"k": 10_001}, {"k": 1, "max_distance": -0.1}, {"k": 1, "max_distance": float("nan")}):
        with pytest.raises(InvalidParameterException):
            store.search("c", np.zeros(128, np.float32), **bad)
    with pytest.raises(InvalidParameterException):
        store.search("c", np.zeros(127, np.float32), k=1)
    assert client.sizes == []


def test_a_path_prefix_in_the_url_prefixes_every_request() -> None:
    store = OpenSearchStore("http://127.0.0.1:4566/opensearch/us-east-1/facesearch/")
    conn = store.client.transport.connection_pool.connections[0]
    assert conn.host == "http://127.0.0.1:4566" and conn.url_prefix == "/opensearch/us-east-1/facesearch"
    assert store.url == "http://127.0.0.1:4566/opensearch/us-east-1/facesearch"
    https = OpenSearchStore(AWS, http_auth=("user", "secret"))
    conn = https.client.transport.connection_pool.connections[0]
    assert conn.host == AWS + ":443" and conn.url_prefix == "" and conn.use_ssl
    for bad in ("ftp://127.0.0.1:9200", "http://127.0.0.1:9200/?x=1", "http://u:p@127.0.0.1:9200", "127.0.0.1:9200"):
        with pytest.raises(InvalidParameterException):
            OpenSearchStore(bad)


def test_injected_auth_is_used_as_given_and_a_signer_needs_https_off_loopback() -> None:
    from opensearchpy import RequestsAWSV4SignerAuth, RequestsHttpConnection, Urllib3AWSV4SignerAuth

    signer = Urllib3AWSV4SignerAuth(static_credentials(), "eu-west-1", "es")
    store = OpenSearchStore(AWS, http_auth=signer, engine="faiss")  # a managed domain: faiss is allowed
    conn = store.client.transport.connection_pool.connections[0]
    assert conn.http_auth is signer
    auth = RequestsAWSV4SignerAuth(static_credentials(), "eu-west-1", "es")
    store = OpenSearchStore(AWS, http_auth=auth, connection_class=RequestsHttpConnection)
    conn = store.client.transport.connection_pool.connections[0]
    assert isinstance(conn, RequestsHttpConnection) and conn.session.auth is auth
    OpenSearchStore("http://127.0.0.1:4566/opensearch/eu-west-1/d", http_auth=signer)  # LocalStack: loopback
    with pytest.raises(InvalidParameterException, match="https"):
        OpenSearchStore("http://search-x.eu-west-1.es.amazonaws.com", http_auth=signer, allow_insecure_http=True)
    with pytest.raises(InvalidParameterException, match="plain HTTP"):
        OpenSearchStore("http://10.0.0.5:9200", http_auth=("user", "secret"))
    with pytest.raises(InvalidParameterException, match="either"):
        OpenSearchStore(AWS, http_auth=signer, aws_region="eu-west-1", aws_credentials=static_credentials())


def test_aws_region_needs_credentials_from_the_caller() -> None:
    # The store never looks credentials up itself (no AWS SDK import): the caller passes them or a signer.
    with pytest.raises(InvalidParameterException, match="aws_credentials"):
        OpenSearchStore(AWS, aws_region="eu-west-1")


def test_the_opensearch_store_imports_neither_faiss_nor_an_aws_sdk() -> None:
    # The Lambda runtime ships the OpenSearch store without faiss; AWS adapters live in facesearch/aws/.
    import subprocess
    import sys

    code = (
        "import sys, facesearch.store.opensearch; "
        "print(sorted(m for m in ('faiss', 'boto3', 'botocore', 'facesearch.store.embedded') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr[-2000:])
