"""The Docker image and the compose stack, built and run for real.

Skipped where no Docker daemon answers, except in CI (`CI=true`), where that fails. The builds use the
classic builder on the host's network; `JOULEBOT_TEST_DOCKER_BASE` names the base image (Docker Hub's
python:3.12-slim-bookworm by default; CI makes one with debootstrap) and `JOULEBOT_TEST_DOCKER_CA` a CA
file for pip inside the build (a network that intercepts TLS). Docker Hub's redis and postgres images
are stood in for by tests/docker/services.Dockerfile, Ollama by tests/standins/ollama.py in a container.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from standins import free_port
from testenv import IN_CI

from joulebot.metering.mcp39f511n_sim import SimulatedMCP39F511N

pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]  # a cold build compiles llama.cpp

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("JOULEBOT_TEST_DOCKER_BASE", "python:3.12-slim-bookworm")
IMAGE = "joulebot:test"
REDIS_IMAGE, POSTGRES_IMAGE = "joulebot-test-redis:bookworm", "joulebot-test-postgres:bookworm"
BUILD_CA = ".build-ca.pem"  # the copy of JOULEBOT_TEST_DOCKER_CA inside the build context (git-ignored)
QUESTION = "What is the capital of France?"


def docker(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def build(tag: str, context: Path, *args: str) -> None:
    """One classic-builder build (no buildx here), its layers cached by the daemon between runs."""
    command = ["docker", "build", "--network", "host", "--build-arg", f"BASE={BASE}", "-t", tag, *args, str(context)]
    result = subprocess.run(
        command, env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True, timeout=3000
    )
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    if shutil.which("docker") is None:
        message = "no docker client here (Debian: apt-get install docker.io)"
    else:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            return
        message = f"no Docker daemon answers: {info.stderr.strip().splitlines()[-1:]}"
    pytest.fail(f"{message}: CI must run the Docker tests") if IN_CI else pytest.skip(message)


@pytest.fixture(scope="session")
def image(docker_daemon: None) -> str:
    extra = []
    if ca := os.environ.get("JOULEBOT_TEST_DOCKER_CA"):
        shutil.copyfile(ca, ROOT / BUILD_CA)
        extra = ["--build-arg", f"EXTRA_CA={BUILD_CA}"]
    build(IMAGE, ROOT, *extra)
    return IMAGE


@pytest.fixture(scope="session")
def service_images(docker_daemon: None) -> None:
    for tag, target in ((REDIS_IMAGE, "redis"), (POSTGRES_IMAGE, "postgres")):
        build(
            tag,
            ROOT / "tests" / "docker",
            "-f",
            str(ROOT / "tests" / "docker" / "services.Dockerfile"),
            "--target",
            target,
        )


def test_the_image_answers_a_question_with_its_footer(image):
    result = docker("run", "--rm", image, "ask", QUESTION, timeout=300)
    lines = result.stdout.splitlines()
    energy = next(line for line in lines if line.startswith("⚡"))
    assert re.search(r"[\d.]+ J total", energy)
    assert any(line.startswith("🌍") and "CO2e" in line for line in lines)
    assert any(line.startswith("🤖 smollm2-135m") for line in lines)


def test_the_image_runs_as_a_user_with_no_build_tool_test_or_secret_inside(image):
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "joulebot" and config["Entrypoint"] == ["joulebot"]
    assert "/data" in config["Volumes"] and config["Healthcheck"]["Test"] == ["CMD", "joulebot", "health"]
    probe = "; ".join(
        [
            "id -u",
            "for tool in gcc cc g++ make cmake ninja pip pip3; do command -v $tool; done",
            "ls -d /src /tmp/extra-ca /tmp/pip-ca.pem /opt/joulebot/lib/*/site-packages/tests 2>/dev/null",
            "find / -xdev \\( -name .env -o -name standins -o -name test_docker.py \\)",
            "/opt/joulebot/bin/python -c 'import llama_cpp, joulebot.worker.station'",
        ]
    )
    result = docker("run", "--rm", "--entrypoint", "sh", image, "-c", probe, timeout=120)
    assert result.stdout.split() == ["10001"], "a root user, a build tool, a test or the build's CA is in the image"


@dataclass
class Stack:
    """One compose project of the stack, with its own env file, volumes and published ports."""

    project: str
    env_file: Path
    files: tuple[str, ...]
    settings: dict[str, str]  # what the env file says

    @classmethod
    def write(cls, project: str, directory: Path, files: tuple[str, ...], **settings: str) -> Stack:
        env_file = directory / f"{project}.env"
        settings["JOULEBOT_ENV_FILE"] = str(env_file)
        env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
        return cls(project, env_file, files, settings)

    def port(self, name: str) -> int:
        return int(self.settings[name].rpartition(":")[2])

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        command = ["docker-compose", "--env-file", str(self.env_file), "-p", self.project]
        for name in self.files:
            command += ["-f", str(ROOT / name)]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")}
        result = subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`joulebot …` in a container of its own on the stack's network."""
        return self.compose("run", "--rm", "-T", "cli", *args, check=False, timeout=300)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def state(self, service: str) -> dict:
        return json.loads(docker("inspect", self.container(service)).stdout)[0]["State"]

    def wait_healthy(self, *services: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        for service in services:
            while (self.state(service).get("Health") or {}).get("Status") != "healthy":
                if time.monotonic() > deadline:
                    logs = self.compose("logs", "--tail", "30", service).stdout
                    raise AssertionError(f"{service} is not healthy: {self.state(service)}\n{logs}")
                time.sleep(1)


def _docker0_address() -> str:
    """The host's address on Docker's default bridge: containers of every network reach it."""
    subnet = json.loads(docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    return str(ipaddress.ip_network(subnet)[1])


@pytest.fixture(scope="module")
def stack(image, service_images, tmp_path_factory) -> Iterator[Stack]:
    """redis, postgres, the worker (with a simulated MCP39F511N at /dev/ttyACM0), web, the Ollama stand-in;
    Redis and PostgreSQL published for a second box (compose.fleet.yaml) on the host's docker0 address."""
    project = f"jbtest{uuid.uuid4().hex[:8]}"
    with SimulatedMCP39F511N(power_w=80.0) as meter:
        pty = os.path.realpath(meter.port)
        os.chmod(pty, 0o666)  # the container's user opens it, as the dialout group opens a real meter's port
        stack = Stack.write(
            project,
            tmp_path_factory.mktemp("compose"),
            ("compose.yaml", "compose.fleet.yaml", "tests/docker/compose.test.yaml"),
            JOULEBOT_IMAGE=image,
            REDIS_IMAGE=REDIS_IMAGE,
            POSTGRES_IMAGE=POSTGRES_IMAGE,
            REDIS_PASSWORD=secrets.token_hex(16),
            POSTGRES_PASSWORD=secrets.token_hex(16),
            BOX_NAME=f"box-{project}",
            WEB_PUBLISH=f"127.0.0.1:{free_port()}",
            METRICS_PUBLISH=f"127.0.0.1:{free_port()}",
            FLEET_BIND=_docker0_address(),
            FLEET_REDIS_PORT=str(free_port()),
            FLEET_POSTGRES_PORT=str(free_port()),
            TEST_METER_TTY=pty,
            METER_INTERVAL_S="0.02",
            IDLE_BASELINE_S="0.5",
        )
        try:
            stack.compose("up", "-d")
            stack.wait_healthy("worker", "web")
            yield stack
        finally:
            stack.compose("down", "-v", "--remove-orphans", check=False)


def _energy_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("⚡"))


def test_the_stack_answers_a_cli_container_and_serves_the_dashboard(stack):
    asked = stack.cli("ask", "--model", "tinyllama", f"{QUESTION} (stack)")
    assert "Paris is the capital of France." in asked.stdout, asked.stdout + asked.stderr
    energy = _energy_line(asked)
    assert "📏 measured at the wall by mcp39f511n" in asked.stdout.splitlines()  # the passed-through meter
    assert "80.0 W avg" in energy

    page = httpx.get(f"http://127.0.0.1:{stack.port('WEB_PUBLISH')}/", timeout=30)
    assert page.status_code == 200 and "tinyllama" in page.text
    metrics = httpx.get(f"http://127.0.0.1:{stack.port('WEB_PUBLISH')}/metrics", timeout=30).text
    assert re.search(r'joulebot_answers_total\{[^}]*model="tinyllama"[^}]*\} 1\.0', metrics), metrics[:2000]
    box = httpx.get(f"http://127.0.0.1:{stack.port('METRICS_PUBLISH')}/metrics", timeout=30).text
    assert f'box="box-{stack.project}"' in box


def test_the_history_survives_down_and_up(stack):
    prompt = f"Which city is the capital of France? ({uuid.uuid4().hex[:6]})"
    _energy_line(stack.cli("ask", "--model", "tinyllama", prompt))
    stack.compose("down")  # the containers go; the volumes stay
    assert stack.compose("ps", "-q").stdout.strip() == ""
    stack.compose("up", "-d")
    stack.wait_healthy("worker", "web")
    history = stack.cli("history", "--json")
    assert history.returncode == 0, history.stderr
    assert prompt in [result["request"]["prompt"] for result in json.loads(history.stdout)]


def test_a_killed_worker_is_restarted_and_answers_again(stack):
    before = stack.state("worker")
    top = docker("top", stack.container("worker"), "-eo", "pid,args").stdout.splitlines()[1:]
    # the worker's Python process, beneath the container's init (docker-init, as compose's `init: true` asks)
    (pid,) = [int(line.split()[0]) for line in top if "bin/joulebot worker" in line and "docker-init" not in line]
    os.kill(pid, signal.SIGKILL)  # the worker process dies (not a stop: Docker's restart policy applies)
    deadline = time.monotonic() + 120
    while stack.state("worker")["StartedAt"] == before["StartedAt"]:
        assert time.monotonic() < deadline, "the worker's container was not restarted"
        time.sleep(0.5)
    stack.wait_healthy("worker")
    # started once, and that start kept the box: the new worker often has the dead one's pid in the restarted
    # container, and was refused its box (exit 2, restarted again) until the dead one's lock lapsed
    assert json.loads(docker("inspect", stack.container("worker")).stdout)[0]["RestartCount"] == 1
    assert "already has a measurement worker" not in stack.compose("logs", "worker").stdout
    _energy_line(stack.cli("ask", "--model", "tinyllama", f"{QUESTION} (after a restart)"))


def test_a_second_box_joins_the_fleet_through_the_hubs_published_ports(stack, tmp_path):
    """A second compose project stands for the second machine: only its worker, reaching the hub's Redis
    and PostgreSQL at the addresses compose.fleet.yaml published."""
    hub = stack.settings
    second = Stack.write(
        f"{stack.project}b",
        tmp_path,
        ("compose.yaml",),
        JOULEBOT_IMAGE=hub["JOULEBOT_IMAGE"],
        REDIS_PASSWORD=hub["REDIS_PASSWORD"],
        POSTGRES_PASSWORD=hub["POSTGRES_PASSWORD"],
        REDIS_HOST=hub["FLEET_BIND"],
        REDIS_PORT=hub["FLEET_REDIS_PORT"],
        POSTGRES_HOST=hub["FLEET_BIND"],
        POSTGRES_PORT=hub["FLEET_POSTGRES_PORT"],
        BOX_NAME=f"box-b-{stack.project}",
        METRICS_PUBLISH=f"127.0.0.1:{free_port()}",
        IDLE_BASELINE_S="0.5",
    )
    try:
        second.compose("up", "-d", "--no-deps", "worker")
        second.wait_healthy("worker")
        boxes = stack.cli("boxes", "--json")
        assert boxes.returncode == 0, boxes.stderr
        live = {view["profile"]["box"] for view in json.loads(boxes.stdout) if view["live"]}
        assert live == {hub["BOX_NAME"], second.settings["BOX_NAME"]}
        asked = stack.cli("ask", "--box", second.settings["BOX_NAME"], QUESTION)
        _energy_line(asked)
        assert f"📍 {second.settings['BOX_NAME']}" in asked.stdout
    finally:
        second.compose("down", "-v", check=False)
