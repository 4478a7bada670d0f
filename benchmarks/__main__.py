"""``python -m benchmarks``: run every benchmark, print the table, write the chart."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main())
