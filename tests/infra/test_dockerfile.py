"""Dockerfile: multi-stage, cached dependency layer, non-root, healthcheck, clean stop."""

from __future__ import annotations

import json
import re

from conftest import ROOT


def instr(dockerfile, keyword):
    return [args for k, args in dockerfile if k == keyword]


def final_stage(dockerfile):
    last_from = max(i for i, (k, _) in enumerate(dockerfile) if k == "FROM")
    return dockerfile[last_from:]


def test_multi_stage_with_minimal_runtime(dockerfile):
    froms = instr(dockerfile, "FROM")
    assert len(froms) >= 2
    assert re.match(r"rust:\S+", froms[0])
    runtime = froms[-1].split()[0]
    assert runtime in {"gcr.io/distroless/cc-debian12:nonroot", "debian:bookworm-slim"}


def test_dependency_layer_before_source(dockerfile):
    copies = [(i, a) for i, (k, a) in enumerate(dockerfile) if k == "COPY"]
    manifest = next(i for i, a in copies if "Cargo.lock" in a)
    source = next(i for i, a in copies if a.startswith("src"))
    dep_build = next(i for i, (k, a) in enumerate(dockerfile) if k == "RUN" and "cargo build --release --locked" in a)
    assert manifest < dep_build < source


def test_runtime_is_non_root(dockerfile):
    users = [a for k, a in final_stage(dockerfile) if k == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_healthcheck_stopsignal_entrypoint(dockerfile):
    stage = final_stage(dockerfile)
    hc = [a for k, a in stage if k == "HEALTHCHECK"]
    assert hc and hc[0].endswith('CMD ["/usr/local/bin/fleetwatch", "healthcheck"]')
    assert [a for k, a in stage if k == "STOPSIGNAL"] == ["SIGTERM"]
    assert json.loads([a for k, a in stage if k == "ENTRYPOINT"][0]) == ["/usr/local/bin/fleetwatch"]
    assert json.loads([a for k, a in stage if k == "CMD"][0]) == ["worker"]


def test_model_and_binary_copied(dockerfile):
    copies = [a for k, a in final_stage(dockerfile) if k == "COPY"]
    assert any(a.endswith("/usr/local/bin/fleetwatch") and "--from=builder" in a for a in copies)
    assert "models/ /usr/share/fleetwatch/models/" in copies


def test_oci_labels(dockerfile):
    labels = " ".join(a for k, a in final_stage(dockerfile) if k == "LABEL")
    for key in ("title", "description", "licenses", "source", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_builder_has_cmake_for_aws_lc(dockerfile):
    assert any(k == "RUN" and "cmake" in a for k, a in dockerfile)


def test_dockerignore():
    lines = {l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in ("target/", ".git/"):
        assert entry in lines, entry
    for needed in ("src", "models", "Cargo.toml", "Cargo.lock"):
        assert not any(l.rstrip("/") == needed for l in lines), f"{needed} must stay in the context"
