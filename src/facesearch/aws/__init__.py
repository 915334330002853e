"""AWS adapters, all in one place: the Rekognition JSON 1.1 protocol, S3 keys/objects/reports, the S3 audit sink,
the EventBridge publisher and the function runtime (settings + clients built once per container).

Nothing in the engine, collections or store packages imports this package, and nothing here imports boto3 or
Powertools at import time: the CLI and the tests load it without an AWS SDK in sight, and a Lambda cold start pays
only for what its function uses.
"""
