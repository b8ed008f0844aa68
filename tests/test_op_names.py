#!/usr/bin/env python3
"""Facts about an op live on its registration: no library file outside ops/ names an op to decide.

Fails, naming the file and line, when a file of a room other than ops/ compares a registered op's
name with a string literal (`name == "mse"`, `"softmax" != op`), looks an op up by a literal name
(`find_op("matmul")`), or asks `is_op(node, "add")`. Such a decision belongs in a field of the op's
registration (ops/op.hpp), which a plugin op can set too. Data about one particular model (the
lecture's labels, keyed by its nodes' names and ops in a table) is not a comparison with a literal.
Usage: test_op_names.py SOURCE_ROOT
"""
import pathlib
import re
import sys

ROOMS = ["core", "cpu", "graph", "data", "format", "render", "train", "cli"]
REGISTERED = re.compile(r'\.name\s*=\s*"([a-z_0-9]+)"')


def op_names(root):
    names = set()
    for path in (root / "ops").glob("*.cpp"):
        names.update(REGISTERED.findall(path.read_text(encoding="utf-8")))
    return names


def offenders(root, names):
    alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    patterns = [
        re.compile(rf'[!=]=\s*"({alt})"'),
        re.compile(rf'"({alt})"\s*[!=]='),
        re.compile(rf'find_op\(\s*"({alt})"\s*\)'),
        re.compile(rf'is_op\([^)]*"({alt})"'),
    ]
    found = []
    for room in ROOMS:
        for path in sorted((root / room).rglob("*.[ch]pp")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("//", 1)[0]
                for p in patterns:
                    m = p.search(code)
                    if m:
                        rel = path.relative_to(root).as_posix()
                        found.append(f"{rel}:{number}: decides by the op name \"{m.group(1)}\"; make it a fact on "
                                     f"the op's registration (ops/op.hpp): {line.strip()}")
                        break
    return found


def main(root):
    root = pathlib.Path(root)
    names = op_names(root)
    if len(names) < 20:
        print(f"only {len(names)} op names found under {root}/ops: wrong source root?", file=sys.stderr)
        return 1
    errors = offenders(root, names)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{len(names)} op names, {len(errors)} comparison(s) outside ops/")
    return 1 if errors else 0


def self_test():
    """The rule can fail: comparisons in other rooms are found, those in ops/ and in comments are not."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        (t / "ops").mkdir()
        (t / "ops" / "mse.cpp").write_text('register_op({.name = "mse"});\nif (n == "mse") {}\n')
        (t / "ops" / "add.cpp").write_text('register_op({.name = "add"});\n')
        (t / "graph").mkdir()
        (t / "graph" / "a.cpp").write_text('// n.op->name == "mse" in a comment is fine\n'
                                           'if (n.op->name == "mse") {}\n'
                                           'const Op* o = find_op("add");\n'
                                           'if ("add" != op) {}\n'
                                           'if (n.op->name == "msex") {}\n')
        found = offenders(t, op_names(t))
        assert len(found) == 3, found
        assert found[0].startswith("graph/a.cpp:2: decides by the op name \"mse\""), found
        assert found[1].startswith("graph/a.cpp:3:") and found[2].startswith("graph/a.cpp:4:"), found


if __name__ == "__main__":
    self_test()
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
