"""``AWS::CloudFormation::CustomResource`` (and every ``Custom::*``) for LocalStack's free build.

The free build has no provider for them and marks them CREATE_COMPLETE without running anything, so e.g. CDK's
``Custom::S3BucketNotifications`` never configures a bucket. This provider does what CloudFormation does: invokes
the ServiceToken Lambda asynchronously with the request event, serves the ResponseURL (a route on LocalStack's own
gateway), and waits for the handler's PUT. Fn::GetAtt reads the response's Data. SNS service tokens are not
supported (a clear failure).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from concurrent.futures import Future, TimeoutError
from pathlib import Path

from localstack import config
from localstack.http import Request, Response
from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)
from localstack.services.edge import ROUTER

from facesearch_localcloud.cfn_custom import (
    CustomResourceFailed,
    original_properties,
    parse_response,
    request_event,
    resource_model,
)

LOG = logging.getLogger(__name__)
RESPONSE_PATH = "/_localcloud/cfn-response"
TIMEOUT_S = float(os.environ.get("LOCALCLOUD_CUSTOM_RESOURCE_TIMEOUT", "300"))

_pending: dict[str, Future[bytes]] = {}
_pending_lock = threading.Lock()
_route_lock = threading.Lock()
_route_added = False


def _on_response(request: Request, token: str) -> Response:
    with _pending_lock:
        future = _pending.get(token)
    if future is None:
        return Response("unknown or expired response URL", status=404)
    if not future.done():
        future.set_result(request.get_data())
    return Response(status=200)


def _ensure_route() -> None:
    global _route_added
    with _route_lock:
        if not _route_added:
            ROUTER.add(f"{RESPONSE_PATH}/<token>", _on_response, methods=["PUT"])
            _route_added = True


def _response_url(token: str) -> str:
    listen = config.GATEWAY_LISTEN[0]
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "") else listen.host
    return f"http://{host}:{listen.port}{RESPONSE_PATH}/{token}"


class CustomResourceProvider(ResourceProvider[dict]):
    SCHEMA = json.loads((Path(__file__).with_name("custom_resource.schema.json")).read_text())

    def _run(self, request: ResourceRequest[dict], request_type: str) -> ProgressEvent[dict]:
        _ensure_route()
        previous = request.previous_state or {}
        if request_type == "Delete":
            properties = original_properties(previous) or original_properties(request.desired_state)
        else:
            properties = dict(request.desired_state or {})
        token = uuid.uuid4().hex
        service_token = properties.get("ServiceToken", "")
        event = request_event(
            request_type=request_type,
            properties=properties,
            response_url=_response_url(token),
            stack_id=request.stack_id,
            logical_id=request.logical_resource_id,
            resource_type=request.resource_type,
            physical_id=previous.get("PhysicalResourceId") if request_type != "Create" else None,
            old_properties=original_properties(previous) if request_type == "Update" else None,
        )
        if ":sns:" in service_token:
            return self._failed(request_type, "SNS-backed custom resources are not supported by the local cloud")
        future: Future[bytes] = Future()
        with _pending_lock:
            _pending[token] = future
        try:
            request.aws_client_factory.lambda_.invoke(
                FunctionName=service_token, InvocationType="Event", Payload=json.dumps(event).encode()
            )
            body = future.result(timeout=TIMEOUT_S)
            physical_id, data = parse_response(body, event)
        except TimeoutError:
            return self._failed(
                request_type,
                f"CloudFormation did not receive a response from your Custom Resource "
                f"within {TIMEOUT_S:.0f}s (ServiceToken {service_token})",
            )
        except CustomResourceFailed as exc:
            return self._failed(request_type, str(exc))
        except Exception as exc:  # e.g. the function does not exist any more
            return self._failed(request_type, f"invoking {service_token} failed: {exc}")
        finally:
            with _pending_lock:
                _pending.pop(token, None)
        return ProgressEvent(OperationStatus.SUCCESS, resource_model=resource_model(physical_id, data, properties))

    @staticmethod
    def _failed(request_type: str, message: str) -> ProgressEvent[dict]:
        if request_type == "Delete":
            # CloudFormation would retry and then fail the stack delete; locally we log and let the delete finish.
            LOG.warning("custom resource delete: %s", message)
            return ProgressEvent(OperationStatus.SUCCESS, resource_model={})
        return ProgressEvent(OperationStatus.FAILED, resource_model={}, message=message)

    def create(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        return self._run(request, "Create")

    def update(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        return self._run(request, "Update")

    def delete(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        return self._run(request, "Delete")


class CustomResourceProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::CloudFormation::CustomResource"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider] | None = None

    def load(self) -> None:
        self.factory = CustomResourceProvider
