#!/usr/bin/env python3
"""Every include points down: core <- cpu <- ops <- graph <- {format, render} <- train <- cli,
and data <- core.

Fails, naming the file and line, when a library file includes a folder it may not
(docs/architecture.md), or when the includes between files form a cycle.
Usage: test_includes.py SOURCE_ROOT
"""
import pathlib
import re
import sys

ALLOWED = {
    "core": set(),
    "cpu": {"core"},
    "ops": {"core", "cpu"},
    "graph": {"core", "cpu", "ops"},
    "data": {"core"},
    "format": {"core", "ops", "graph"},
    "render": {"core", "ops", "graph"},
    "train": {"core", "cpu", "ops", "graph", "data", "format", "render"},
    "cli": {"core", "cpu", "ops", "graph", "data", "format", "render", "train"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def includes(path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = INCLUDE.match(line)
        if m:
            yield number, m.group(1)


def main(root):
    root = pathlib.Path(root)
    errors, edges = [], {}
    for room, allowed in ALLOWED.items():
        for path in sorted((root / room).rglob("*.[ch]pp")):
            rel = path.relative_to(root).as_posix()
            edges[rel] = []
            for number, target in includes(path):
                folder = target.split("/")[0]
                if folder not in ALLOWED:
                    continue
                edges[rel].append(target)
                if folder != room and folder not in allowed:
                    may = ", ".join(sorted(allowed)) or "no other folder"
                    errors.append(f"{rel}:{number}: includes {target}, but {room}/ may include {may}")
    # A cycle among files (a includes b includes a) is a room that does not read top-down.
    state = {}
    for start in edges:
        stack = [(start, iter(edges.get(start, [])))]
        path = [start]
        state[start] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
                path.pop()
            elif state.get(child) == "open":
                cycle = path[path.index(child):] + [child]
                errors.append("include cycle: " + " -> ".join(cycle))
            elif child not in state and child in edges:
                state[child] = "open"
                stack.append((child, iter(edges[child])))
                path.append(child)
    if len(edges) < 50:
        errors.append(f"only {len(edges)} library files found under {root}: wrong source root?")
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{len(edges)} files checked, {len(errors)} problem(s)")
    return 1 if errors else 0


def self_test():
    """The rule can fail: a tree with an upward include and a cycle must be refused."""
    import contextlib
    import io
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        for room in ALLOWED:
            (t / room).mkdir()
            for i in range(10):
                (t / room / f"f{i}.hpp").write_text("")
        (t / "core" / "f0.hpp").write_text('#include "ops/f0.hpp"\n')
        (t / "train" / "f1.hpp").write_text('#include "train/f2.hpp"\n')
        (t / "train" / "f2.hpp").write_text('#include "train/f1.hpp"\n')
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(t)
        text = err.getvalue()
        assert status == 1, "a broken tree passed"
        assert "core/f0.hpp:1: includes ops/f0.hpp, but core/ may include no other folder" in text, text
        assert "include cycle: train/f1.hpp -> train/f2.hpp -> train/f1.hpp" in text, text


if __name__ == "__main__":
    self_test()
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
