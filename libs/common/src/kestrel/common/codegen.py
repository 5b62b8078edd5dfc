"""Generate protobuf/gRPC Python code from protos/ into kestrel.api; --check fails on stale code."""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

# libs/common/src/kestrel/common/codegen.py: src/ is two levels up, the repository five. Only a source
# checkout has protos/; the guard keeps an installed copy importable.
_HERE = Path(__file__).resolve()
SRC_ROOT = _HERE.parents[2]
REPO_ROOT = _HERE.parents[5] if len(_HERE.parents) > 5 else SRC_ROOT
PACKAGE = Path("kestrel/api/v1")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
INIT_FILES = (Path("kestrel/api/__init__.py"), PACKAGE / "__init__.py")


def generate(protos: Path, out_root: Path) -> list[Path]:
    """Run protoc on every .proto under protos/ (imports resolve against protos/) into out_root.

    Because -I is protos/ and the files live under protos/kestrel/api/v1, protoc names the modules
    kestrel.api.v1.*_pb2 and writes `from kestrel.api.v1 import ...`: no import fixing needed.
    """
    from grpc_tools import protoc  # dev-only dependency: import lazily

    sources = sorted(p.relative_to(protos).as_posix() for p in protos.rglob("*.proto"))
    if not sources:
        raise SystemExit(f"codegen: no .proto files under {protos}")
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{protos}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("codegen: protoc failed (see the messages above)")
    for init in INIT_FILES:
        path = out_root / init
        if not path.exists():
            path.write_text("")
    return generated_files(out_root)


def generated_files(out_root: Path) -> list[Path]:
    """Generated files under out_root, relative to it (what --check compares)."""
    found = [p for p in (out_root / PACKAGE).glob("*") if p.name.endswith(GENERATED_SUFFIXES)]
    inits = [init for init in INIT_FILES if (out_root / init).exists()]
    return sorted([p.relative_to(out_root) for p in found] + inits)


def stale_files(protos: Path, out_root: Path) -> list[str]:
    """Files in out_root that differ from a fresh generation, or are missing or left over."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        fresh = set(generate(protos, fresh_root))
        current = set(generated_files(out_root))
        problems = [f"missing: {p}" for p in sorted(fresh - current)]
        problems += [f"left over: {p}" for p in sorted(current - fresh)]
        problems += [
            f"stale: {p}"
            for p in sorted(fresh & current)
            if not filecmp.cmp(fresh_root / p, out_root / p, shallow=False)
        ]
    return problems


def write(protos: Path, out_root: Path) -> list[Path]:
    """Regenerate in place, deleting generated modules whose .proto is gone."""
    for leftover in generated_files(out_root):
        if leftover.name.endswith(GENERATED_SUFFIXES):
            (out_root / leftover).unlink()
    (out_root / PACKAGE).mkdir(parents=True, exist_ok=True)
    return generate(protos, out_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kestrel.common.codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if generated code is stale")
    parser.add_argument("--protos", type=Path, default=REPO_ROOT / "protos")
    parser.add_argument("--out", type=Path, default=SRC_ROOT, help="root of the kestrel package tree")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files(args.protos, args.out)
        for problem in problems:
            print(f"codegen: {problem}", file=sys.stderr)
        if problems:
            print("codegen: run `python -m kestrel.common.codegen` (task generate)", file=sys.stderr)
        return 1 if problems else 0
    for path in write(args.protos, args.out):
        print(f"generated {args.out / path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
