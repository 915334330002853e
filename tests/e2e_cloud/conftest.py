"""One local cloud running the REAL CDK app (the repository's `app.py`, `-c target=localstack`) per test module
(module scope: it is stopped as soon as its tests are done, not at the end of the whole suite).

`facesearch local up` on a free port once, `down` at the end. The times a reader asks about (start, deploy, index
of the dev gallery, query → result) are printed at the end of the run and written to
`out/e2e-cloud-timings.json`. Anything that cannot start fails the session with the reason (never skips).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_cloud_support import COLLECTION, TIMINGS, gallery_key, read_json, stack_queues, wait_for

from facesearch.client import rekognition_client
from facesearch.devtools import localcloud

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cloud() -> Iterator[dict]:
    if os.environ.get("FACESEARCH_E2E_REUSE_CLOUD"):
        # Development loop: run against a cloud already up (`facesearch local up -c target=localstack`,
        # FACESEARCH_LOCALCLOUD_DIR as it was started); it is left running.
        status = localcloud.status()
        if not status.get("running"):
            pytest.fail("FACESEARCH_E2E_REUSE_CLOUD is set but no local cloud runs", pytrace=False)
        yield status
        return
    state = tempfile.mkdtemp(prefix="facesearch-e2e-cloud-")
    previous = os.environ.get("FACESEARCH_LOCALCLOUD_DIR")
    os.environ["FACESEARCH_LOCALCLOUD_DIR"] = state
    started = time.monotonic()
    try:
        try:
            status = localcloud.up(port=None, app_dir=REPO, context={"target": "localstack"})
        except localcloud.LocalCloudError as exc:
            log = Path(state) / "cdk.log"
            tail = log.read_text()[-4000:] if log.exists() else ""
            pytest.fail(f"the local cloud did not come up: {exc}\n{tail}", pytrace=False)
        TIMINGS["local_up_total_s"] = round(time.monotonic() - started, 1)
        TIMINGS.update({f"{k}_s": v for k, v in status["timings_s"].items()})
        yield status
    finally:
        with contextlib.suppress(Exception):
            down_started = time.monotonic()
            localcloud.down()
            TIMINGS["local_down_s"] = round(time.monotonic() - down_started, 1)
        if previous is None:
            os.environ.pop("FACESEARCH_LOCALCLOUD_DIR", None)
        else:
            os.environ["FACESEARCH_LOCALCLOUD_DIR"] = previous
        shutil.rmtree(state, ignore_errors=True)
        if TIMINGS:
            record = REPO / "out" / "e2e-cloud-timings.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            TIMINGS["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            TIMINGS["load_average"] = os.getloadavg()
            record.write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture(scope="module")
def aws(cloud: dict) -> Callable[[str], Any]:
    """boto3 clients bound to the local cloud (the real SDK, the real endpoints)."""

    return lambda service: localcloud.client(service, cloud["endpoint_url"])


@pytest.fixture(scope="module")
def rekognition(cloud: dict) -> Any:
    """The stock boto3 Rekognition client, pointed at the deployed REST API."""
    return rekognition_client(cloud["api_url"], region=localcloud.REGION, **localcloud.CREDENTIALS)


@pytest.fixture(scope="module")
def labelled(faces_dev: Path) -> dict[str, str]:
    """image file → identity, for the 61 labelled images of faces-dev."""
    with (faces_dev / "identities.csv").open() as fh:
        return {row["image"]: row["identity"] for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def poisoned(aws: Callable[[str], Any]) -> dict:
    """A malformed body sent straight to the index queue before the gallery: it needs maxReceiveCount × the
    visibility timeout to reach the DLQ, so the other tests run meanwhile."""
    queues = stack_queues(aws)
    dlq = next(url for logical, url in queues.items() if logical.startswith("IndexQueueDlq"))
    index_queue = next(url for logical, url in queues.items() if logical.startswith("IndexQueue") and url != dlq)
    marker = f"malformed-{uuid.uuid4().hex}"
    aws("sqs").send_message(QueueUrl=index_queue, MessageBody=f"{{not json {marker}")
    return {"dlq": dlq, "marker": marker, "sent": time.monotonic()}


@pytest.fixture(scope="module")
def gallery(
    cloud: dict,
    aws: Callable[[str], Any],
    rekognition: Any,
    labelled: dict[str, str],
    faces_dev: Path,
    poisoned: dict,
) -> dict:
    """The collection created through the API, the dev gallery uploaded, and every report waited for."""
    if COLLECTION in rekognition.list_collections()["CollectionIds"]:  # a reused cloud (development loop)
        rekognition.delete_collection(CollectionId=COLLECTION)
    rekognition.create_collection(CollectionId=COLLECTION)
    s3 = aws("s3")
    started = time.monotonic()
    versions: dict[str, str] = {}
    for name, identity in sorted(labelled.items()):
        key = gallery_key(identity, name)
        out = s3.put_object(Bucket=cloud["gallery_bucket"], Key=key, Body=(faces_dev / "images" / name).read_bytes())
        versions[f"reports/{key}.json"] = out["VersionId"]  # the bucket is versioned: reports name the version
    uploaded = time.monotonic()
    documents: dict[str, dict] = {}

    def reports() -> dict[str, dict] | None:
        for key, version in versions.items():
            if key not in documents:
                doc = read_json(s3, cloud["results_bucket"], key)
                if doc and doc["Object"]["VersionId"] == version:
                    documents[key] = doc
        return documents if len(documents) == len(versions) else None

    wait_for(f"{len(versions)} index reports", reports, timeout=900, interval=2)
    TIMINGS["gallery_images"] = len(versions)
    TIMINGS["gallery_upload_s"] = round(uploaded - started, 1)
    TIMINGS["gallery_upload_to_all_reports_s"] = round(time.monotonic() - started, 1)
    return {"collection": COLLECTION, "reports": documents}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "end-to-end local cloud timings")
        terminalreporter.write_line(", ".join(f"{name} {value}" for name, value in TIMINGS.items()))
