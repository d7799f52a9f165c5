"""``python -m dyntorch``: ``--version`` prints the installed version and where the notebook
front end stands."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m dyntorch``."""
    import dyntorch

    p = argparse.ArgumentParser(prog="python -m dyntorch", description=dyntorch.__doc__)
    p.add_argument("--version", action="version", version=f"dyntorch {dyntorch.__version__}")
    p.add_argument("--info", action="store_true",
                   help="where dyntorch is installed and whether its notebook front end is built")
    args = p.parse_args(argv)
    if args.info:
        from .viz import _static

        built = (_static.STATIC / "widget.js").exists()
        print(f"dyntorch {dyntorch.__version__} at {dyntorch.__file__}")
        print(f"notebook front end: {'built' if built else 'NOT built'} ({_static.STATIC})")
        return 0
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
