"""The sandboxed side of the code checker: sandbox.py runs this file's text with `python3 -I -c`
inside bubblewrap; it is never imported.

It limits itself first (CPU seconds, address space, file size, processes from argv[2:6]; 64
open files; no core dumps), then reads {"blocks", "name", "kind", "tests"} as JSON on stdin,
runs each code block (a block that does not compile or raises is skipped: models often add an
"Output:" block; an unfenced block is cut at the end until it compiles), finds the function or
class to test and runs every test.

The tests arrive rewritten by probes.py: each assert became `_probe(k, (values…))`. What goes
out, as JSON lines on the file named by argv[1], is data only: the values each probe saw
(plain types, anything else named by its type), the exception that stopped a test, and "done".
Nothing here decides whether a test passed: the expected values never enter the sandbox, and
the scorer compares outside. The model's code runs in this process and may write to that file
too; all it can write is values, which it would have to get right to pass.
"""

import contextlib
import io
import json
import math
import os
import resource
import sys

MAX_DEPTH = 20  # deeper values are sent as opaque: nothing the tests compare is deeper


def limit(cpu_s, memory, file_size, processes):
    for which, value in (
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, file_size),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_NOFILE, 64),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def plain(value, depth=0):
    """The value as tagged JSON data, read through the built-in type's own methods.

    A subclass travels as what it holds (an IntEnum as its int, a defaultdict as its items):
    whatever it overrides (`__eq__`, `__iter__`, `__bool__`) plays no part. Anything else
    travels as its type's name only, which equals nothing on the scorer's side.
    """
    kind = type(value)  # the real type: isinstance() would believe a forged __class__
    if depth > MAX_DEPTH:
        return {"opaque": "TooDeep"}
    if value is None or kind is bool:
        return value
    if issubclass(kind, int):
        number = int.__int__(value)
        return number if number.bit_length() < 4000 else {"opaque": "int"}
    if issubclass(kind, float):
        number = float.__float__(value)
        return number if math.isfinite(number) else {"float": repr(number)}
    if issubclass(kind, str):
        return str.__str__(value)
    if issubclass(kind, bytes):
        return {"bytes": bytes.hex(value)}
    if issubclass(kind, list):
        return [plain(v, depth + 1) for v in list.__iter__(value)]
    if issubclass(kind, dict):
        return {"dict": [[plain(k, depth + 1), plain(v, depth + 1)] for k, v in dict.items(value)]}
    for base in (tuple, set, frozenset):
        if issubclass(kind, base):
            return {base.__name__: [plain(v, depth + 1) for v in base.__iter__(value)]}
    return {"opaque": kind.__name__}


class Trace:
    def __init__(self, fd):
        self.fd = fd

    def write(self, record):
        with contextlib.suppress(Exception):  # a value too large for the file limit: the test lacks it
            os.write(self.fd, json.dumps(record).encode() + b"\n")


def compiled(block, trim):
    lines = block.splitlines()
    while True:
        try:
            return compile("\n".join(lines) if trim else block, "<answer>", "exec"), None
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            if not trim or len(lines) <= 1:
                return None, type(exc).__name__
            lines.pop()  # trailing prose after unfenced code


def run_blocks(blocks, namespace, printed, trace):
    for number, block in enumerate(blocks):
        code, error = compiled(block["code"], block["trim"])
        if code is None:
            trace.write({"block": number, "compile": error})
            continue
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)
        except BaseException as exc:  # SystemExit and all: the model's code is untrusted
            trace.write({"block": number, "raised": type(exc).__name__})


def find_target(namespace, name, kind):
    target = namespace.get(name)
    if target is None and kind != "script":  # the model chose its own name: its first function (or class), no test
        wanted = type if kind == "class" else type(find_target)
        own = [
            v
            for k, v in namespace.items()
            if isinstance(v, wanted) and getattr(v, "__module__", None) == "solution" and not k.startswith("test")
        ]
        target = own[0] if own else None
    return target


def main():
    trace = Trace(int(sys.argv[1]))
    limit(*map(int, sys.argv[2:6]))
    spec = json.loads(sys.stdin.read())
    sys.stdin = io.StringIO("")  # input() in the model's code ends instead of waiting
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    printed = io.StringIO()
    run_blocks(spec["blocks"], namespace, printed, trace)
    name, kind = spec["name"], spec["kind"]
    target = find_target(namespace, name, kind)
    if target is None and kind != "script":
        trace.write({"missing": name})
        return
    for number, test in enumerate(spec["tests"]):

        def probe(k, values, number=number):
            trace.write({"test": number, "assert": k, "values": [plain(v) for v in values]})

        scope = dict(namespace, **{name: target, "printed": printed.getvalue(), "_probe": probe})
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(test, "<test>", "exec"), scope)
        except BaseException as exc:
            trace.write({"test": number, "raised": type(exc).__name__})
            continue
        trace.write({"test": number, "done": True})


main()
