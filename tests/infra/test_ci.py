"""The checks around the infrastructure: the Terraform test scenarios cover every
validation, the lock files, the provider-mirror lookup CI depends on, and the
README's test command (scripts/test) as CI runs it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from conftest import ROOT, TERRAFORM, load_hcl


def run_blocks(path) -> dict[str, dict]:
    runs = {}
    for block in load_hcl(path).get("run", []):
        runs.update(block)
    return runs


def refused(runs: dict[str, dict]) -> set[str]:
    found = set()
    for body in runs.values():
        for item in body.get("expect_failures", []):
            found.add(item.strip("${}"))
    return found


def test_every_validation_and_precondition_has_a_refusal_run(root_module):
    """Each input check must be seen failing on a bad input (`expect_failures`), or it
    may be a check that cannot fail."""
    runs = run_blocks(TERRAFORM / "tests" / "plan.tftest.hcl")
    assert {"defaults", "sagemaker_enabled", "largest_settings", "smallest_settings"} <= set(runs)
    for name, body in runs.items():
        assert body.get("command") == "plan", f"run {name} must only plan"
    expected = refused(runs)
    validated = {f"var.{n}" for n, v in root_module.variables.items() if v.get("validation")}
    with_preconditions = {
        f"{rtype}.{name}"
        for rtype, named in root_module.resources.items()
        for name, body in named.items()
        for lifecycle in body.get("lifecycle", [])
        if lifecycle.get("precondition")
    }
    assert len(validated) >= 15 and len(with_preconditions) >= 5
    missing = (validated | with_preconditions) - expected
    assert not missing, f"no refusal run (expect_failures) for {sorted(missing)}"


def test_example_header_command_is_the_planned_one(example_module):
    """The command in the example's header must be one that plans (issue 10: it used to
    omit ecr_repository_arn for an ECR image, which fails at run time)."""
    header = []
    for line in (TERRAFORM / "examples/complete/main.tf").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    command = " ".join(header).replace("\\ ", " ")
    command = command[command.index("terraform apply"):command.index("Then upload")]
    args = shlex.split(command)
    given = {}
    for i, a in enumerate(args):
        if a == "-var":
            key, value = args[i + 1].split("=", 1)
            given[key] = value
    assert given, command
    planned = run_blocks(TERRAFORM / "examples/complete/tests/plan.tftest.hcl")["header_command"]["variables"][0]
    planned = {k: v if isinstance(v, str) else "[" + ",".join(f'"{x}"' for x in v) + "]" for k, v in planned.items()}
    assert given == planned
    if ".dkr.ecr." in given["container_image"]:
        assert "ecr_repository_arn" in given


def test_lock_files_committed_and_equal():
    module_lock = (TERRAFORM / ".terraform.lock.hcl").read_text()
    example_lock = (TERRAFORM / "examples/complete/.terraform.lock.hcl").read_text()
    assert module_lock == example_lock
    block = re.search(r'provider "registry.terraform.io/hashicorp/aws" \{(.*?)\n\}', module_lock, re.S).group(1)
    version = re.search(r'version\s*=\s*"([\d.]+)"', block).group(1)
    major, minor, _ = (int(x) for x in version.split("."))
    assert (5, 80) <= (major, minor) < (7, 0), version  # versions.tf: >= 5.80, < 7.0
    # h1: what `terraform init` checks here; zh: the registry's per-platform zip hashes,
    # so an init on another platform (macOS, arm64) accepts the same lock file.
    assert len(re.findall(r'"h1:[A-Za-z0-9+/=]{44}"', block)) >= 1
    assert len(re.findall(r'"zh:[0-9a-f]{64}"', block)) >= 10
    ignored = (ROOT / ".gitignore").read_text()
    assert "**/.terraform/" in ignored and "*.tfstate" in ignored


def tf_mirror(env_extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run(["bash", str(ROOT / ".ci/tf-mirror")], env=env, capture_output=True, text=True)


def test_tf_mirror_refuses_a_directory_without_the_provider(tmp_path):
    result = tf_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)})
    assert result.returncode != 0
    assert "registry.terraform.io/hashicorp/aws/" in result.stderr and str(tmp_path) in result.stderr


def test_tf_mirror_accepts_a_mirror_with_the_locked_version(tmp_path):
    version = re.search(r'version\s*=\s*"([\d.]+)"', (TERRAFORM / ".terraform.lock.hcl").read_text()).group(1)
    (tmp_path / "registry.terraform.io/hashicorp/aws" / version / "linux_amd64").mkdir(parents=True)
    result = tf_mirror({"TF_PLUGIN_MIRROR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path)


def test_ci_infra_runs_terraform_for_real():
    text = (ROOT / ".ci/infra").read_text()
    for needed in ("bash .ci/tf-mirror", "-lockfile=readonly", "tf validate", "tf test",
                   "terraform fmt -check -recursive", "checkov", "hadolint", "shellcheck",
                   "ran no test"):
        assert needed in text, needed
    # Nothing is skipped quietly: no "skip" outside comments (the old fmt step printed
    # "NOTICE: terraform not installed; fmt check skipped" and went on).
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "skip" not in code.replace("--skip-download", "").lower()
    for directory in ("terraform", "terraform/examples/complete"):
        assert re.search(rf"for dir in [^\n]*\b{re.escape(directory)}\b", text), directory


# ------------------------------------------------------------------ scripts/test


def test_scripts_test_installs_what_the_tests_need():
    path = ROOT / "scripts/test"
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    assert "set -euo pipefail" in text
    assert "tests/requirements.txt" in text and ".venv-test" in text
    assert "cargo install --locked cargo-nextest" in text
    # --all-features: the tests that need the simulator are never left out.
    assert 'exec cargo nextest run --all-features "$@"' in text
    # The emulator with DynamoDB's atomic writes (tests/common/moto-server-atomic).
    assert 'MOTO_SERVER="$ROOT/tests/common/moto-server-atomic"' in text
    shim = ROOT / "tests/common/moto-server-atomic"
    assert os.access(shim, os.X_OK)
    assert "from moto.server import main" in shim.read_text()
    assert re.search(r"^moto\[server\]==[\d.]+$", (ROOT / "tests/requirements.txt").read_text(), re.M)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^scripts/test\b", ci, re.M)
    assert not re.search(r"^\s*cargo nextest run", ci, re.M), "CI must run the README's command, scripts/test"
    readme = (ROOT / "README.md").read_text()
    two_commands = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "```sh\nscripts/test\n```" in two_commands
