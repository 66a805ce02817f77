"""Print greenlane's pinned dependencies minus torch and bitsandbytes, one per line, for `pip install -r`.

The Jetson image keeps its base's torch (the CUDA build for the Jetson's GPU); reading the pins from
pyproject.toml at build time means the image can never drift from them.
"""

import re
import sys
import tomllib
from pathlib import Path

KEPT_FROM_BASE = {"torch", "bitsandbytes"}


def pins(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d for d in deps if re.split(r"[\s\[=<>!~;]", d, maxsplit=1)[0].lower() not in KEPT_FROM_BASE]


if __name__ == "__main__":
    print("\n".join(pins(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
