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
    assert re.match(r"(--platform=\S+ )?rust:\S+", froms[0])
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
    assert "model-artifacts/ /usr/share/fleetwatch/models/" in copies


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
    for needed in ("src", "model-artifacts", "Cargo.toml", "Cargo.lock"):
        assert not any(l.rstrip("/") == needed for l in lines), f"{needed} must stay in the context"


def stages(dockerfile):
    """(FROM arguments, instructions) per stage."""
    out = []
    for k, a in dockerfile:
        if k == "FROM":
            out.append((a, []))
        elif out:
            out[-1][1].append((k, a))
    return out


def builder_stage(dockerfile):
    return next(body for head, body in stages(dockerfile) if head.endswith(" AS builder"))


def test_builder_cross_compiles_from_the_build_platform(dockerfile):
    """No QEMU: the builder runs on the build machine and compiles for TARGETARCH."""
    head = next(h for h, _ in stages(dockerfile) if h.endswith(" AS builder"))
    assert head.startswith("--platform=$BUILDPLATFORM ")
    body = builder_stage(dockerfile)
    assert ("ARG", "TARGETARCH") in body
    runs = [a for k, a in body if k == "RUN"]
    assert any("rustup target add" in r and "aarch64-unknown-linux-gnu" in r and "x86_64-unknown-linux-gnu" in r for r in runs)
    builds = [r for r in runs if "cargo build" in r]
    assert len(builds) == 2
    for r in builds:
        assert "--target" in r and "--locked" in r, r
    envs = " ".join(a for k, a in body if k == "ENV")
    for var in ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
                "CC_aarch64_unknown_linux_gnu", "CC_x86_64_unknown_linux_gnu"):
        assert var in envs, var
    # The runtime stage is for the target platform (no --platform override).
    assert not stages(dockerfile)[-1][0].startswith("--platform")
    # The binary is installed from the target's own directory.
    assert any('target/$target/release/fleetwatch' in r for r in builds)


def test_cargo_builds_use_cache_mounts(dockerfile):
    for r in [a for k, a in builder_stage(dockerfile) if k == "RUN" and "cargo build" in a]:
        assert "--mount=type=cache,target=/usr/local/cargo/registry" in r, r
        assert re.search(r"--mount=type=cache,target=/build/target\b", r), r
        # The target directory is a cache mount, not part of the layer: the binary
        # must leave it in the same step, or be built in a step that only warms it.
        assert "install -D" in r or "rm -rf src bench" in r, r


def test_apt_packages_pinned_as_hadolint_wants(dockerfile):
    """DL3008 (pinned versions), DL3015 (--no-install-recommends), DL3009 (lists removed),
    DL4006 (pipefail before pipes)."""
    installs = 0
    shell_pipefail = False
    for k, a in dockerfile:
        if k == "FROM":
            shell_pipefail = False
        if k == "SHELL":
            shell_pipefail = "pipefail" in a
        if k != "RUN":
            continue
        if re.search(r"[^|]\|[^|]", a.replace("||", "")):
            assert shell_pipefail, f"RUN with a pipe needs SHELL [..., -o, pipefail, ...]: {a}"
        for m in re.finditer(r"apt-get install ((?:-\S+\s+)*)((?:[a-z0-9][\w.+-]*=\S+\s*)+|[^;&|]*)", a):
            installs += 1
            flags, packages = m.group(1), m.group(2).split()
            assert "--no-install-recommends" in flags and "-y" in flags, a
            assert packages, a
            for pkg in packages:
                assert re.fullmatch(r"[a-z0-9][\w.+-]*=[\w.:~+-]+", pkg), f"unpinned apt package {pkg!r}"
        if "apt-get install" in a:
            assert "rm -rf /var/lib/apt/lists/*" in a, a
    assert installs >= 3  # native, arm64 cross and amd64 cross toolchains


def test_tmp_is_a_volume_for_the_read_only_root(dockerfile):
    assert ("VOLUME", "/tmp") in final_stage(dockerfile)
