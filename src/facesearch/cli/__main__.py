import sys

from facesearch.cli import main

sys.exit(main())
