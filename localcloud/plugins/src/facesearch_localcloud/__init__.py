"""LocalStack plugins that make LocalStack (community, 2026.3.0) run the facesearch stack on a machine without Docker.

* ``dynamodb`` / ``dynamodbstreams`` providers over LocalStack's bundled moto (``PROVIDER_OVERRIDE_DYNAMODB=moto``):
  the stock providers download DynamoDB Local and a JDK at run time.
* the ``host`` Lambda runtime executor (``LAMBDA_RUNTIME_EXECUTOR=host``): each execution environment is a
  persistent host subprocess instead of a Docker container.
* an ``AWS::CloudFormation::CustomResource`` provider that really invokes the ServiceToken Lambda and serves the
  ResponseURL (the free build otherwise marks custom resources CREATE_COMPLETE and does nothing).

This package runs inside LocalStack's own virtualenv (Python 3.13); ``lambda_worker.py`` runs in the Lambda
runtime interpreter (Python 3.11) and uses the standard library only.
"""
