"""The four Lambda functions and the two layers they share (runtime packages, ONNX models)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from facesearch_cdk.config import FUNCTION_NAMES, StackConfig

DESCRIPTIONS = {
    "index_faces": "Index the faces of gallery images (S3 -> SQS), delete them when the image is removed",
    "search_faces": "Search every face of a query image (S3 -> SQS), write the result, emit FaceSearchCompleted",
    "api": "Rekognition JSON 1.1 API behind API Gateway (IAM auth)",
    "match_frames": "Detect, track and search faces in video frames (Kinesis enhanced fan-out)",
}


class Layers(Construct):
    """Layers from directories built by layers/build.py: `python/` lands at /opt/python, `models/` at /opt/models.

    Plain `Code.from_asset(dir)` (no Docker bundling), so synth needs neither Docker nor the network; building the
    directories is the app's job before synth (see app.py), so a stale or missing build fails loudly there.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        arch = _architecture(config)
        for directory, inner in ((config.runtime_layer_dir, "python"), (config.models_layer_dir, "models")):
            if not (Path(directory) / inner).is_dir():
                raise FileNotFoundError(
                    f"layer directory {directory}/{inner} is missing; build it with "
                    f"`.venv/bin/python layers/build.py --arch {config.architecture}`"
                )
        self.runtime = lambda_.LayerVersion(
            self,
            "Runtime",
            code=lambda_.Code.from_asset(str(config.runtime_layer_dir)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            compatible_architectures=[arch],
            description="facesearch core + lean runtime dependencies (the `lambda` extra)",
            removal_policy=RemovalPolicy.DESTROY,  # a layer version is immutable and rebuilt from source
        )
        self.models = lambda_.LayerVersion(
            self,
            "Models",
            code=lambda_.Code.from_asset(str(config.models_layer_dir)),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
            compatible_architectures=[arch],
            description="ONNX face models (MTCNN + dlib ResNet), verified by sha256 at build and load",
            removal_policy=RemovalPolicy.DESTROY,
        )


class Functions(Construct):
    """One Lambda function per `functions/<name>/` folder; handler `app.handler`, Python 3.11."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        layers: Layers,
        environment: dict[str, str],
        removal: RemovalPolicy,
        vpc: ec2.IVpc | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, lambda_.Function] = {}
        for name in FUNCTION_NAMES:
            if name == "match_frames" and not config.video:
                continue
            sizing = config.functions[name]
            function_name = f"{config.stack_name}-{name}"
            # Lambda's default group name, created (with retention) before the function and also named in its
            # LoggingConfig: AWS writes there, and so does a local executor that only knows the default name.
            log_group = logs.LogGroup(
                self,
                f"{_pascal(name)}Logs",
                log_group_name=f"/aws/lambda/{function_name}",
                retention=retention(config.log_retention_days),
                removal_policy=removal,
            )
            fn = lambda_.Function(
                self,
                _pascal(name),
                function_name=function_name,
                description=DESCRIPTIONS[name],
                runtime=lambda_.Runtime.PYTHON_3_11,
                architecture=_architecture(config),
                handler="app.handler",
                code=lambda_.Code.from_asset(str(config.functions_dir / name)),
                layers=[layers.runtime, layers.models],
                memory_size=sizing.memory_mb,
                timeout=Duration.seconds(sizing.timeout_seconds),
                reserved_concurrent_executions=sizing.reserved_concurrency,
                environment={
                    **environment,
                    "FACESEARCH_THREADS": str(sizing.threads),
                    "POWERTOOLS_SERVICE_NAME": "facesearch",
                    "POWERTOOLS_METRICS_NAMESPACE": "facesearch",
                    "POWERTOOLS_METRICS_FUNCTION_NAME": name,
                },
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                vpc=vpc,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS) if vpc else None,
                # Async invocations are not used (all triggers are SQS/Kinesis mappings or API Gateway): no retries
                # that could bypass the dead-letter queues.
                retry_attempts=0,
            )
            self.by_name[name] = fn

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.by_name[name]


def _architecture(config: StackConfig) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if config.architecture == "arm64" else lambda_.Architecture.X86_64


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention at or above `days` (it accepts only fixed periods)."""
    for allowed in sorted(_RETENTION):
        if allowed >= days:
            return getattr(logs.RetentionDays, _RETENTION[allowed])
    return logs.RetentionDays.TEN_YEARS
