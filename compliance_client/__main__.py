"""python -m compliance_client: see compliance_client.cli."""

import sys

from compliance_client.cli import main

sys.exit(main())
