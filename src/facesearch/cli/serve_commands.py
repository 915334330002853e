"""``facesearch serve``: the Rekognition JSON API on localhost, so boto3 (or any Rekognition SDK) can use
facesearch with no AWS account: ``boto3.client("rekognition", endpoint_url="http://127.0.0.1:8080")``."""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the Rekognition JSON 1.1 API over HTTP (uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--backend", choices=("embedded", "opensearch"), default=None, help="overrides FACESEARCH_BACKEND")
    p.add_argument("--workers", type=int, default=0, help="request threads (default: the usable cores)")
    p.set_defaults(func=serve)


def s3_client_if_available() -> object | None:
    """IndexFaces/SearchFacesByImage with ``Image.S3Object`` need S3; boto3 reads AWS_ENDPOINT_URL_S3 etc."""
    try:
        import boto3
    except ImportError:
        return None
    return boto3.session.Session().client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"))


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from facesearch.aws.asgi import RekognitionAsgiApp
    from facesearch.aws.protocol import RekognitionProtocol
    from facesearch.engine.cores import available_cores
    from facesearch.settings import load_settings
    from facesearch.wiring import build_processors, build_service

    settings = load_settings(backend=args.backend)
    service = build_service(settings, s3_client=s3_client_if_available())
    protocol = RekognitionProtocol(service, processors=build_processors(settings, service))
    app = RekognitionAsgiApp(protocol, workers=args.workers or available_cores())
    print(f"facesearch: Rekognition API on http://{args.host}:{args.port} ({settings.backend} store)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0
