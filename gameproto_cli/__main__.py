"""``python -m gameproto_cli``: the same as the ``game`` command."""

from __future__ import annotations

import sys

from .main import main

sys.exit(main())
