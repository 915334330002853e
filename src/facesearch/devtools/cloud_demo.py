"""The README's first command on the local cloud: the deployed stack does the work, this module only drives it.

Local cloud up (or reused) → a collection created through the REST API with the stock boto3 Rekognition client →
the dev gallery uploaded to the gallery bucket under the key convention → wait for every index report → group
photos uploaded to the query bucket → wait for their results → who was found, with what similarity. The cloud is
left running (`facesearch local down` stops it); a second run reuses it, or restarts it if it died.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from facesearch.devtools import localcloud

COLLECTION = "faces-dev"
QUERIES = ("couple.jpg", "selfie-many-people.jpg")


def _say(message: str) -> None:
    print(message, flush=True)


def ensure_cloud(context: dict[str, str]) -> dict:
    """The running local cloud with the stack deployed, started if needed (a dead one's state is cleared first)."""
    status = localcloud.status()
    if status.get("running") and status.get("api_url"):
        _say(f"== 1. Local cloud already running at {status['endpoint_url']} (reused)")
        return status
    if localcloud.read_state() is not None:
        _say("== 1. A previous local cloud is not (fully) running: stopping what is left of it")
        localcloud.down()
    port = localcloud.DEFAULT_PORT if localcloud._port_free(localcloud.DEFAULT_PORT) else None
    _say("== 1. Local cloud up: LocalStack + OpenSearch, bootstrap and deploy of the CDK app (a few minutes)")
    started = time.monotonic()
    status = localcloud.up(port=port, context=context)
    timings = ", ".join(f"{k} {v} s" for k, v in status["timings_s"].items())
    _say(f"   up in {time.monotonic() - started:.0f} s ({timings}) at {status['endpoint_url']}")
    return status


def _clients(status: dict) -> tuple[Any, Any]:
    from facesearch.client import rekognition_client

    s3 = localcloud.client("s3", status["endpoint_url"])
    rekognition = rekognition_client(status["api_url"], region=localcloud.REGION, **localcloud.CREDENTIALS)
    return s3, rekognition


def _read_json(s3: Any, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _wait(what: str, probe: Any, timeout: float, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def upload_gallery(status: dict, s3: Any, rekognition: Any, faces_dev: Path) -> dict[str, dict]:
    """Upload every labelled image; wait until each uploaded *version* has its report (reports are overwritten)."""
    with (faces_dev / "identities.csv").open() as fh:
        labelled = {row["image"]: row["identity"] for row in csv.DictReader(fh)}
    if COLLECTION in rekognition.list_collections().get("CollectionIds", []):
        rekognition.delete_collection(CollectionId=COLLECTION)  # a fresh collection each run
    rekognition.create_collection(CollectionId=COLLECTION)
    _say(f"== 2. Collection {COLLECTION!r} created through {status['api_url']}")
    _say(
        f"== 3. Uploading {len(labelled)} labelled photos to s3://{status['gallery_bucket']}/collections/{COLLECTION}/"
    )
    started = time.monotonic()
    versions: dict[str, str | None] = {}
    for name, identity in sorted(labelled.items()):
        key = f"collections/{COLLECTION}/{identity}/{name}"
        out = s3.put_object(Bucket=status["gallery_bucket"], Key=key, Body=(faces_dev / "images" / name).read_bytes())
        versions[key] = out.get("VersionId")
    pending = dict(versions)
    reports: dict[str, dict] = {}

    def progress() -> bool:
        before = len(reports)
        for key, version in list(pending.items()):
            doc = _read_json(s3, status["results_bucket"], f"reports/{key}.json")
            if doc and (version is None or doc.get("Object", {}).get("VersionId") == version):
                reports[key] = doc
                del pending[key]
        if len(reports) != before:
            print(f"\r   indexed {len(reports)}/{len(versions)}", end="", flush=True)
        return not pending

    _wait("the index reports", progress, timeout=900)
    faces = sum(len(doc.get("FaceRecords", [])) for doc in reports.values())
    failed = [key for key, doc in reports.items() if doc.get("Status") != "INDEXED"]
    count = rekognition.describe_collection(CollectionId=COLLECTION)["FaceCount"]
    _say(
        f"\n   {len(reports)} reports, {faces} faces indexed, collection FaceCount {count}, "
        f"{time.monotonic() - started:.1f} s from first upload to last report"
    )
    for key in failed:
        _say(f"   FAILED {key}: {reports[key].get('Error')}")
    return reports


def query(status: dict, s3: Any, faces_dev: Path, name: str) -> dict:
    key = f"{COLLECTION}/{Path(name).stem}-{uuid.uuid4().hex[:8]}{Path(name).suffix}"
    started = time.monotonic()
    s3.put_object(Bucket=status["query_bucket"], Key=key, Body=(faces_dev / "images" / name).read_bytes())
    result = _wait(
        f"results/{key}.json", lambda: _read_json(s3, status["results_bucket"], f"results/{key}.json"), timeout=300
    )
    elapsed = time.monotonic() - started
    _say(f"   {name} → s3://{status['query_bucket']}/{key}: result in {elapsed:.1f} s")
    if result.get("Status") != "SEARCHED":
        _say(f"   search failed: {result.get('Error')}")
        return result
    for i, face in enumerate(result["SearchedFaces"], 1):
        if face["FaceMatches"]:
            best = face["FaceMatches"][0]
            _say(f"     face {i}: {best['Face']['ExternalImageId']}  similarity {best['Similarity']:.2f}")
        else:
            _say(f"     face {i}: no one in the gallery")
    return result


def run_cloud_demo(datasets: Path, context: dict[str, str] | None = None) -> int:
    faces_dev = datasets / "faces-dev"
    if not (faces_dev / "identities.csv").is_file():
        print(f"demo data missing: {faces_dev} (pass --datasets DIR)", file=sys.stderr)
        return 2
    try:
        status = ensure_cloud({"target": "localstack", **(context or {})})
        s3, rekognition = _clients(status)
        upload_gallery(status, s3, rekognition, faces_dev)
        _say("== 4. Group photos uploaded to the query bucket; the search function writes who it found")
        for name in QUERIES:
            query(status, s3, faces_dev, name)
    except (localcloud.LocalCloudError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _say(f"\nThe local cloud keeps running (state: {localcloud.state_file()}); `facesearch local status` shows it.")
    _say("Tear down with: .venv/bin/facesearch local down")
    return 0
