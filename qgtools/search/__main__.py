"""``python -m qgtools.search run|report|proxy``: see :mod:`qgtools.search.cli`."""

from qgtools.search.cli import main

if __name__ == "__main__":  # not when a spawned worker re-imports this as __mp_main__
    raise SystemExit(main())
