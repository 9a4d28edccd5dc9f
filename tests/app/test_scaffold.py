"""`hub component new`: the generated component loads, passes its own tests, imports cleanly, runs in the runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import ValidationError
from app.scaffold.component import new_component
from app.services import accounts, catalog

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_component_passes_its_own_tests(tmp_path) -> None:
    folder = new_component("hello-world", tmp_path)
    assert {p.name for p in folder.iterdir()} >= {
        "component.json",
        "hello_world_component.py",
        "tests",
        "Dockerfile",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_the_generated_component_imports_without_warnings(db, tmp_path) -> None:
    folder = new_component("hello-world", tmp_path)
    tenant = accounts.create_tenant(db, "Scaffold").id
    result = catalog.import_folder(db, folder, tenant_id=tenant)
    assert (result.name, result.version, result.warnings) == ("hello-world", "0.1.0", [])


def test_bad_names_and_existing_folders_are_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match="is not a component name"):
        new_component("Hello World", tmp_path)
    new_component("again", tmp_path)
    with pytest.raises(ValidationError, match="already exists"):
        new_component("again", tmp_path)


def test_the_runner_speaks_json_lines_and_keeps_prints_out_of_them(tmp_path) -> None:
    folder = new_component("chatty", tmp_path)
    module = folder / "chatty_component.py"
    module.write_text(
        module.read_text().replace(
            "    name = (message.data", '    print("debugging output")\n    name = (message.data'
        )
    )
    requests = [
        {"id": 1, "function": "greet", "fields": {"greeting": "Hi"}, "message": {"data": {"name": "Bo"}},
         "context": {"message_id": "m"}},
        {"id": 2, "verify": {"api_key": ""}},
        {"id": 3, "function": "nope"},
    ]  # fmt: skip
    stdin = "\n".join(json.dumps(r) for r in requests) + "\nnot json\n"
    done = subprocess.run(
        [sys.executable, "-m", "runtime.steps.runner", str(folder)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0]["outputs"] == [{"data": {"text": "Hi, Bo!"}}]
    assert answers[0]["logs"] == [["info", "greeted Bo"]]
    assert answers[1] == {"id": 2, "ok": False, "error": "the API key is empty"}
    assert answers[2]["error"] == "no function 'nope' (it has: greet, poll)"
    assert answers[3]["error"].startswith("the request is not JSON")
    assert "debugging output" in done.stderr
    assert done.returncode == 0


def test_the_runner_refuses_a_folder_without_a_component(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime.steps.runner", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr.strip()) == (2, f"error: {tmp_path} has no component.json")


def _rewrite(folder: Path, old: str, new: str) -> None:
    module = next(folder.glob("*_component.py"))
    module.write_text(module.read_text().replace(old, new))


def test_two_components_with_the_same_module_name_keep_their_own_code(tmp_path) -> None:
    from runtime.sdk import load_component
    from runtime.steps.runner import handle

    answers = []
    for name in ("alpha", "beta"):
        folder = new_component(name, tmp_path)
        module = next(folder.glob("*_component.py"))
        module.rename(folder / "handlers.py")
        (folder / "handlers.py").write_text(
            (folder / "handlers.py").read_text().replace('text = f"', f'text = "{name}: " + f"')
        )
        descriptor = json.loads((folder / "component.json").read_text())
        descriptor["x-hub"]["entry_point"] = "handlers"
        (folder / "component.json").write_text(json.dumps(descriptor))
        component = load_component(folder)
        request = {
            "id": 1,
            "function": "greet",
            "fields": {"greeting": "Hi"},
            "message": {"data": {"name": "X"}},
        }
        answers.append(handle(component, request)["outputs"][0]["data"]["text"])
    assert answers == ["alpha: Hi, X!", "beta: Hi, X!"]


def test_the_runner_survives_bad_requests_and_misbehaving_components(tmp_path) -> None:
    folder = new_component("wild", tmp_path)
    _rewrite(
        folder,
        "    name = (message.data",
        "    import os, sys\n"
        "    os.write(1, b'{\"id\": 999}\\n')\n"
        "    if fields.get('exit'):\n        sys.exit(3)\n"
        "    if fields.get('odd'):\n        return {1: 'not a JSON key'}\n"
        "    name = (message.data",
    )
    greet = {"function": "greet", "fields": {"greeting": "Hi"}, "message": {"data": {"name": "Bo"}}}
    lines = [
        json.dumps({"id": 1, **greet, "fields": {"greeting": "Hi", "exit": True}}),
        "[1, 2]",
        json.dumps({"id": 2, **greet, "fields": {"greeting": "Hi", "odd": True}}),
        json.dumps({"id": 3, **greet, "context": {"attempt": "x"}}),
        json.dumps({"id": 4, **greet}),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "runtime.steps.runner", str(folder)],
        cwd=ROOT,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["id"] for a in answers] == [1, None, 2, 3, 4]  # nothing forged on fd 1, one answer per request
    assert answers[0]["error"] == "the component called sys.exit()"
    assert answers[1]["error"] == "a request must be a JSON object"
    assert answers[2]["error"].startswith("the step's output cannot be sent as JSON")
    assert answers[3]["error"].startswith("bad request: ValueError")
    assert answers[4]["outputs"] == [{"data": {"text": "Hi, Bo!"}}]
    assert '{"id": 999}' in done.stderr
