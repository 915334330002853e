"""FaceSearchStack: composes the constructs, grants each function exactly what it touches, and names the outputs."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from facesearch_cdk.config import ConfigError, StackConfig
from facesearch_cdk.constructs import grants
from facesearch_cdk.constructs.api import RekognitionApi
from facesearch_cdk.constructs.audit_key import AuditSealKey
from facesearch_cdk.constructs.encryption import DataKey
from facesearch_cdk.constructs.functions import Functions, Layers, retention
from facesearch_cdk.constructs.monitoring import Monitoring
from facesearch_cdk.constructs.notifications import BucketQueue
from facesearch_cdk.constructs.search_access import OpenSearchRoleMapping, SearchAdminRole
from facesearch_cdk.constructs.search_domain import SearchDomain
from facesearch_cdk.constructs.state import IdempotencyTable, SearchEvents, VideoStateTable
from facesearch_cdk.constructs.storage import Buckets, bucket_arn
from facesearch_cdk.constructs.streams import VideoStreams

# S3 keys the functions read or write (see README: key convention, event flow).
GALLERY_PREFIX = "collections/"
REPORTS_PREFIX = "reports/"
RESULTS_PREFIX = "results/"


class FaceSearchStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        removal = RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN
        log_retention = retention(config.log_retention_days)

        data_key = DataKey(self, "DataKey", removal_policy=removal)
        key = data_key.key
        buckets = Buckets(self, "Buckets", config=config, key=key, removal=removal)
        self.buckets = buckets

        vpc: ec2.Vpc | None = None
        if config.vpc:
            flow_logs = logs.LogGroup(self, "VpcFlowLogs", retention=log_retention, removal_policy=removal)
            vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=2,
                nat_gateways=1,  # egress for the AWS APIs the functions call (S3, SQS, KMS, ...); see deploy.md
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                    ec2.SubnetConfiguration(
                        name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
                    ),
                ],
                flow_logs={
                    "all": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
                },
                gateway_endpoints={
                    "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                    "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                },
            )

        # Queue visibility must outlast a whole batch's processing, or SQS redelivers work still in flight:
        # AWS's guidance is six times the function timeout.
        # AWS's guidance is six times the function timeout; `queues.visibilityTimeoutSeconds` overrides it.
        def visibility(name: str) -> Duration:
            timeout = config.functions[name].timeout_seconds
            chosen = config.queues.visibility_timeout_seconds
            if chosen is None:
                return Duration.seconds(6 * timeout + config.queues.batch_window_seconds)
            if chosen < timeout:
                raise ConfigError(
                    f"queues.visibilityTimeoutSeconds ({chosen}) must be >= functions.{name}.timeoutSeconds ({timeout})"
                )
            return Duration.seconds(chosen)

        dlq_retention = Duration.days(config.queues.dlq_retention_days)
        index_queue = BucketQueue(
            self,
            "IndexQueue",
            bucket=buckets.gallery,
            bucket_name=buckets.names["gallery"],
            events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            prefix=GALLERY_PREFIX,
            key=key,
            visibility_timeout=visibility("index_faces"),
            max_receive_count=config.queues.max_receive_count,
            dlq_retention=dlq_retention,
            removal=removal,
        )
        search_queue = BucketQueue(
            self,
            "SearchQueue",
            bucket=buckets.query,
            bucket_name=buckets.names["query"],
            events=["s3:ObjectCreated:*"],
            prefix=None,
            key=key,
            visibility_timeout=visibility("search_faces"),
            max_receive_count=config.queues.max_receive_count,
            dlq_retention=dlq_retention,
            removal=removal,
        )
        # S3 encrypts what it sends to the KMS-encrypted queues with our key, on behalf of these two buckets only.
        data_key.allow_service(
            "s3.amazonaws.com",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            source_arns=[bucket_arn(buckets.names["gallery"]), bucket_arn(buckets.names["query"])],
        )

        table = IdempotencyTable(self, "Idempotency", key=key, removal=removal).table
        audit_key = AuditSealKey(self, "AuditKey", key=key)
        bus = SearchEvents(self, "Events", bus_name=f"{config.bucket_prefix}-events").bus
        # Video (issue 12) is optional: its streams and consumer are a fixed monthly cost (docs/deploy.md).
        streams = (
            VideoStreams(self, "Streams", config=config.streams, key=key, removal=removal) if config.video else None
        )
        video_state = VideoStateTable(self, "VideoState", key=key, removal=removal).table if config.video else None

        # Fine-grained access: the master user is a dedicated role that only the role-mapping function runs with,
        # so no face function is an OpenSearch admin.
        search_admin = SearchAdminRole(self, "OpenSearchAdmin") if config.open_search.fine_grained_access else None
        search = SearchDomain(
            self,
            "Search",
            config=config.open_search,
            key=key,
            removal=removal,
            log_retention=log_retention,
            vpc=vpc,
            master_user_arn=search_admin.role.role_arn if search_admin else None,
        )

        environment = {
            "FACESEARCH_BACKEND": "opensearch",
            "FACESEARCH_OPENSEARCH_URL": search.url(config.open_search.scheme),
            # SigV4 over https (AWS); a plain-http endpoint (the local cloud's gateway) is unsigned: the store
            # refuses to sign over http, and LocalStack's node checks no signatures.
            "FACESEARCH_OPENSEARCH_AUTH": "sigv4" if config.open_search.scheme == "https" else "none",
            "FACESEARCH_INDEX_PREFIX": config.index_prefix,
            "FACESEARCH_MODEL_DIR": "/opt/models",
            "FACESEARCH_AUDIT_SINK": "s3",
            "FACESEARCH_AUDIT_BUCKET": buckets.audit.bucket_name,
            "FACESEARCH_AUDIT_PREFIX": config.audit_prefix,
            "FACESEARCH_AUDIT_KEY_SECRET": audit_key.secret.secret_arn,
            "FACESEARCH_RESULTS_BUCKET": buckets.results.bucket_name,
            "FACESEARCH_IDEMPOTENCY_TABLE": table.table_name,
            "FACESEARCH_EVENT_BUS": bus.event_bus_name,
        }
        if streams is not None:
            environment["FACESEARCH_FRAMES_STREAM"] = streams.frames.stream_name
            environment["FACESEARCH_RESULTS_STREAM"] = streams.results.stream_name
        if video_state is not None:
            environment["FACESEARCH_STATE_TABLE"] = video_state.table_name
        if config.min_floor is not None:
            environment["FACESEARCH_MIN_FLOOR"] = str(config.min_floor)

        layers = Layers(self, "Layers", config=config)
        functions = Functions(
            self, "Functions", config=config, layers=layers, environment=environment, removal=removal, vpc=vpc
        )
        self.functions = functions
        index_fn, search_fn = functions["index_faces"], functions["search_faces"]
        api_fn = functions["api"]
        match_fn = functions.by_name.get("match_frames")
        video_fns = [match_fn] if match_fn is not None else []

        # --- triggers
        for fn, queue in ((index_fn, index_queue), (search_fn, search_queue)):
            fn.add_event_source(
                sources.SqsEventSource(
                    queue.queue,
                    batch_size=config.queues.batch_size,
                    max_batching_window=Duration.seconds(config.queues.batch_window_seconds),
                    max_concurrency=config.queues.max_concurrency,
                    report_batch_item_failures=True,
                )
            )
        if streams is not None and match_fn is not None:
            streams.attach_consumer(match_fn)
        api = RekognitionApi(self, "Api", handler=api_fn, log_retention=log_retention, removal=removal)

        # --- least privilege: each function gets the objects, keys and actions it uses, nothing account-wide.
        grants.s3_get(index_fn, buckets.gallery, f"{GALLERY_PREFIX}*")
        grants.s3_get(search_fn, buckets.query)
        grants.s3_get(api_fn, buckets.gallery, f"{GALLERY_PREFIX}*")  # IndexFaces with an S3Object
        grants.s3_get(api_fn, buckets.video)  # StartFaceSearch with an S3Object
        grants.s3_get(api_fn, buckets.results, f"{RESULTS_PREFIX}*")  # GetFaceSearch
        grants.s3_put(index_fn, buckets.results, f"{REPORTS_PREFIX}*")
        grants.s3_put(search_fn, buckets.results, f"{RESULTS_PREFIX}*")
        # Audit is append-only: s3:PutObject under the prefix and nothing else (no delete, no retention change);
        # Object Lock keeps every version for the retention period, so an overwrite adds a version, alters nothing.
        for fn in (index_fn, search_fn, api_fn, *video_fns):
            grants.s3_put(fn, buckets.audit, f"{config.audit_prefix}*")
            audit_key.grant_read(fn)  # seals its records (the chain shows a record deleted by a bypass)
        for fn in (index_fn, search_fn, *video_fns):
            grants.idempotency_table(fn, table)
        for fn in (search_fn, *video_fns):
            bus.grant_put_events_to(fn)
        if streams is not None and match_fn is not None:
            grants.stream_write(match_fn, streams.results)
            grants.stream_write(api_fn, streams.frames)  # stored video is fanned out as frames
        if video_state is not None:
            for fn in video_fns:
                grants.video_state(fn, video_state)  # camera states; reads its stream's processor
            grants.video_state(api_fn, video_state, delete=True)  # the stream-processor operations
        search.grant(index_fn, write=True)
        search.grant(api_fn, write=True)  # CreateCollection/DeleteCollection/IndexFaces/DeleteFaces
        search.grant(search_fn, write=False)
        for fn in video_fns:
            search.grant(fn, write=False)
        search.restrict_to(
            [fn.role for fn in functions.by_name.values() if fn.role is not None]
            + ([search_admin.role] if search_admin else []),
            config.open_search.domain_name,
        )
        self.role_mapping: OpenSearchRoleMapping | None = None
        if search_admin is not None:

            def roles(*fns: lambda_.Function) -> list[iam.IRole]:
                return [fn.role for fn in fns if fn.role is not None]

            self.role_mapping = OpenSearchRoleMapping(
                self,
                "OpenSearchRoleMapping",
                admin=search_admin,
                domain_endpoint=search.domain.domain_endpoint,
                domain_arn=search.domain.domain_arn,
                index_prefix=config.index_prefix,
                writers=roles(index_fn, api_fn),
                readers=roles(search_fn, *video_fns),
                log_retention=log_retention,
                removal=removal,
                vpc=vpc,
                security_group=search.security_group,
            )

        # --- monitoring
        monitoring = Monitoring(self, "Monitoring", key=key, alarm_email=config.alarm_email)
        labels = {"IndexFaces": index_fn, "SearchFaces": search_fn, "Api": api_fn}
        if match_fn is not None:
            labels["MatchFrames"] = match_fn
        for label, fn in labels.items():
            monitoring.watch_function(label, fn)
        monitoring.watch_dlq("Index", index_queue.dlq)
        monitoring.watch_dlq("Search", search_queue.dlq)
        if streams is not None and match_fn is not None:
            monitoring.watch_dlq("MatchFrames", streams.dlq)
            monitoring.watch_iterator_age(
                "MatchFrames", match_fn, Duration.seconds(max(config.streams.max_record_age_seconds, 60) // 2)
            )
        monitoring.watch_api(api.rest_api, config.api_latency_p95_ms)
        monitoring.watch_domain(search.domain)

        # --- the names the local cloud, the end-to-end tests and operators read (`facesearch local status`)
        outputs = {
            "GalleryBucketName": buckets.gallery.bucket_name,
            "QueryBucketName": buckets.query.bucket_name,
            "ResultsBucketName": buckets.results.bucket_name,
            "VideoBucketName": buckets.video.bucket_name,
            "AuditBucketName": buckets.audit.bucket_name,
            "AuditKeySecretArn": audit_key.secret.secret_arn,
            "ApiUrl": api.rest_api.url,
            "OpenSearchEndpoint": search.domain.domain_endpoint,
            "EventBusName": bus.event_bus_name,
            "IndexDlqUrl": index_queue.dlq.queue_url,
            "SearchDlqUrl": search_queue.dlq.queue_url,
        }
        if streams is not None:
            outputs["FramesStreamName"] = streams.frames.stream_name
            outputs["ResultsStreamName"] = streams.results.stream_name
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

        # Kept for the role-mapping construct and tests.
        self.search = search
        self.search_admin = search_admin
        self.streams = streams
        self.index_queue, self.search_queue = index_queue, search_queue
        self.table, self.bus, self.api, self.data_key = table, bus, api, data_key
        self.audit_key = audit_key
