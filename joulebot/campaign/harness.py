"""The child side of the code checker (run by sandbox.py as a script, never imported).

Reads {"blocks", "name", "kind", "tests"} as JSON on stdin, runs each code block
(a block that does not compile or raises is skipped: models often add an
"Output:" block), finds the function or class to test, runs every test, and
writes {"passed", "note"} on the file descriptor named by argv[1]. Before any of
that it limits itself: CPU seconds, address space and file size from argv[2:5],
64 open files, no core dumps.
"""

import contextlib
import io
import json
import os
import resource
import sys


def limit(cpu_s: int, memory: int, file_size: int) -> None:
    for which, value in (
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, file_size),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def main() -> None:
    out = os.fdopen(int(sys.argv[1]), "w")
    limit(*map(int, sys.argv[2:5]))
    spec = json.loads(sys.stdin.read())
    sys.stdin = io.StringIO("")  # input() in the model's code ends instead of waiting
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    printed = io.StringIO()
    problems = []
    for block in spec["blocks"]:
        try:
            code = compile(block, "<answer>", "exec")
        except (SyntaxError, ValueError) as exc:
            problems.append(f"a block does not compile ({type(exc).__name__})")
            continue
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)
        except BaseException as exc:  # SystemExit and all: the model's code is untrusted
            problems.append(f"a block raised {type(exc).__name__}")
    name, kind = spec["name"], spec["kind"]
    target = namespace.get(name)
    if target is None and kind != "script":  # the model chose its own name: its first function (or class), no test
        wanted = type if kind == "class" else type(main)
        own = [
            v
            for k, v in namespace.items()
            if isinstance(v, wanted) and getattr(v, "__module__", None) == "solution" and not k.startswith("test")
        ]
        target = own[0] if own else None
    if target is None and kind != "script":
        out.write(json.dumps({"passed": 0, "note": f"no {kind} {name} found; " + "; ".join(problems[:2])}))
        return
    passed, failures = 0, []
    for test in spec["tests"]:
        scope = dict(namespace, **{name: target, "printed": printed.getvalue()})
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(test, "<test>", "exec"), scope)
            passed += 1
        except BaseException as exc:
            failures.append(f"{test.splitlines()[0][:60]}: {type(exc).__name__}")
    note = f"{passed}/{len(spec['tests'])} tests pass" + (f"; first failure: {failures[0]}" if failures else "")
    out.write(json.dumps({"passed": passed, "note": note}))


main()
