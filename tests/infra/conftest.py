"""Shared loaders for the infrastructure tests (docker-compose.yml, terraform/, Dockerfile)."""

from __future__ import annotations

import json
import pathlib
import re

import hcl2
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

_HCL_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


def load_hcl(path: pathlib.Path) -> dict:
    with path.open() as f:
        return hcl2.load(f, serialization_options=_HCL_OPTIONS)


class Module:
    """All blocks of one terraform module directory, indexed by type and name."""

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.files = sorted(directory.glob("*.tf"))
        assert self.files, f"no .tf files in {directory}"
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.modules: dict[str, dict] = {}
        self.text = ""
        for f in self.files:
            self.text += f.read_text()
            doc = load_hcl(f)
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for name, body in named.items():
                            target.setdefault(rtype, {})[name] = body
            for block in doc.get("variable", []):
                self.variables.update(block)
            for block in doc.get("output", []):
                self.outputs.update(block)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("module", []):
                self.modules.update(block)

    def resource(self, rtype: str, name: str) -> dict:
        assert rtype in self.resources and name in self.resources[rtype], (
            f"resource {rtype}.{name} missing"
        )
        return self.resources[rtype][name]

    def all_of(self, rtype: str) -> dict[str, dict]:
        found = self.resources.get(rtype, {})
        assert found, f"no {rtype} resource"
        return found


def block(body: dict, name: str) -> dict:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


def blocks(body: dict, name: str) -> list[dict]:
    found = body.get(name)
    assert isinstance(found, list) and found, f"expected {name} blocks, got {found!r}"
    return found


@pytest.fixture(scope="session")
def root_module() -> Module:
    return Module(TERRAFORM)


@pytest.fixture(scope="session")
def example_module() -> Module:
    return Module(TERRAFORM / "examples" / "complete")


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def worker_policy() -> dict:
    return json.loads((ROOT / "deploy" / "iam" / "worker-policy.json").read_text())


@pytest.fixture(scope="session")
def dockerfile() -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        logical.append(current)
        current = ""
    out = []
    for instr in logical:
        m = re.match(r"(\w+)\s*(.*)", instr)
        assert m, instr
        out.append((m.group(1).upper(), m.group(2).strip()))
    return out
