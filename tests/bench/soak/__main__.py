"""``python -m tests.bench.soak``: see the package's docstring."""

from tests.bench.soak.report import main

raise SystemExit(main())
