"""`python -m kestrel.devstack.drill`: the fault drill."""

import sys

from kestrel.devstack.drill.command import main

sys.exit(main())
