"""CDK app entry point (`cdk deploy` runs `python app.py`).

The stack is not built yet: this exits with a clear message rather than deploying something partial.
"""

import sys

if __name__ == "__main__":
    sys.exit("facesearch: the AWS stack (cdk/) is not implemented yet; run ./scripts/demo.sh for the local service")
