#!/usr/bin/env python3
"""Every C++ block in the docs compiles, and every one that is a program runs and exits 0.

A ```cpp block in docs/*.md or README.md must follow a marker line saying how it is built:
  <!-- cpp: program -->      a whole program: compiled, linked against the build's libchainrule,
                             run in the source root (so models/ and data/ paths work), exit 0
  <!-- cpp: statements -->   statements: compiled inside a function, after `#include "chainrule.hpp"`,
                             <fmt/format.h> and `using namespace chainrule;`
  <!-- cpp: namespace -->    declarations at namespace scope, after the same includes
  <!-- cpp: op-fields -->    designated initializers of an Op: compiled as `Op op{ BLOCK };`
  <!-- cpp: body SIGNATURE --> a function body: compiled as `SIGNATURE { BLOCK }`
and any of them may add `; before: CODE` (declarations the block assumes). A block without a
marker fails, and so does a C++ block written as an indented code block, so none escapes.
Usage: test_doc_code.py SOURCE_ROOT BUILD_ROOT CXX [SANITIZE]
"""
import concurrent.futures
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

MARKER = re.compile(r"<!--\s*cpp:\s*(program|statements|namespace|op-fields|body)\s*(.*?)\s*-->")
PRELUDE = '#include "chainrule.hpp"\n#include <fmt/format.h>\nusing namespace chainrule;\n'


def blocks(path):
    """(line, kind, extra, before, code) of every ```cpp block; kind None when unmarked."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip() in ("```cpp", "```c++"):
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            m = MARKER.search(lines[i - 1]) if i > 0 else None
            kind, extra, before = (m.group(1), m.group(2), "") if m else (None, "", "")
            if m and "; before:" in (" " + extra):
                extra, before = (" " + extra).split("; before:", 1)
                extra = extra.strip()
            found.append((i + 1, kind, extra, before.strip(), "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return found


def indented_cpp(path):
    """Lines of indented code blocks that look like C++ (they would escape the markers)."""
    hits, in_fence = [], False
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("    ") and re.search(r"#include <chainrule|chainrule::\w+\s+\w+\s*=", line):
            hits.append(n)
    return hits


def source_of(kind, extra, before, code):
    if kind == "program":
        return before + "\n" + code + "\n"
    head = PRELUDE + before + "\n"
    if kind == "namespace":
        return head + code + "\n"
    if kind == "statements":
        return head + "[[maybe_unused]] static void snippet() {\n" + code + "\n}\n"
    if kind == "op-fields":
        return head + "[[maybe_unused]] static const Op snippet_op{\n" + code + "\n};\n"
    return head + extra + " {\n" + code + "\n}\n"  # body


def main(root, build, cxx, sanitize=""):
    root, build = pathlib.Path(root), pathlib.Path(build)
    flags = ["-std=c++20", "-O0", "-w", f"-I{root}"]
    flags += shlex.split(subprocess.run(["pkg-config", "--cflags", "openblas", "fmt", "nlohmann_json"],
                                        capture_output=True, text=True, check=True).stdout)
    if sanitize and sanitize != "none":
        flags += [f"-fsanitize={sanitize}"]
    libs = [f"-L{build}", "-lchainrule", f"-Wl,-rpath,{build}"] + shlex.split(
        subprocess.run(["pkg-config", "--libs", "fmt"], capture_output=True, text=True, check=True).stdout)
    errors, programs, compiled = [], 0, 0
    docs = sorted((root / "docs").glob("*.md")) + [root / "README.md"]
    with tempfile.TemporaryDirectory() as tmp:
        # <chainrule/...> as an installed program includes it: the source tree under that name.
        (pathlib.Path(tmp) / "chainrule").symlink_to(root.resolve())
        flags.append(f"-I{tmp}")
        # Every block starts with the same headers: compiled once as a precompiled header,
        # which GCC takes for each block given `-include` with the same flags (minutes less).
        prelude = pathlib.Path(tmp) / "prelude.hpp"
        prelude.write_text(PRELUDE, encoding="utf-8")
        subprocess.run([cxx, *flags, "-x", "c++-header", str(prelude), "-o", str(prelude) + ".gch"], check=True)
        flags += ["-include", str(prelude)]
        jobs = []
        for doc in docs:
            rel = doc.relative_to(root).as_posix()
            for n in indented_cpp(doc):
                errors.append(f"{rel}:{n}: C++ in an indented block; fence it as ```cpp with a <!-- cpp: ... --> marker")
            for line, kind, extra, before, code in blocks(doc):
                if kind is None:
                    errors.append(f"{rel}:{line}: a ```cpp block without a <!-- cpp: KIND --> marker on the line before it")
                    continue
                src = pathlib.Path(tmp) / f"{doc.stem}_{line}.cpp"
                src.write_text(source_of(kind, extra, before, code), encoding="utf-8")
                jobs.append((f"{rel}:{line}", kind, src))

        def build_and_run(job):
            """The block's problem, or None; and whether a program ran."""
            where, kind, src = job
            exe = src.with_suffix("")
            cmd = [cxx, *flags, str(src)] + (["-o", str(exe), *libs] if kind == "program" else ["-fsyntax-only"])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                return f"{where}: the {kind} block does not compile:\n{r.stderr[-3000:]}", False
            if kind != "program":
                return None, False
            env = dict(os.environ, LD_LIBRARY_PATH=str(build))
            run = subprocess.run([str(exe)], cwd=root, capture_output=True, text=True, env=env, timeout=300)
            if run.returncode != 0:
                return f"{where}: the program exits {run.returncode}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}", True
            return None, True

        # The compiler runs once per block: as many at a time as there are cores.
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for problem, ran in pool.map(build_and_run, jobs):
                compiled += 1
                programs += ran
                if problem:
                    errors.append(problem)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{compiled} C++ blocks compiled, {programs} programs run, {len(errors)} problem(s)")
    if compiled < 10:
        print("fewer than 10 C++ blocks found: wrong source root?", file=sys.stderr)
        return 1
    return 1 if errors else 0


def self_test():
    """A block without a marker, and C++ in an indented block, are found."""
    with tempfile.TemporaryDirectory() as tmp:
        p = pathlib.Path(tmp) / "x.md"
        p.write_text("text\n```cpp\nint x;\n```\n<!-- cpp: op-fields; before: int f(); -->\n```cpp\n.name = \"a\",\n```\n"
                     "    #include <chainrule/chainrule.hpp>\n", encoding="utf-8")
        b = blocks(p)
        assert [k for _, k, _, _, _ in b] == [None, "op-fields"], b
        assert b[1][3] == "int f();", b
        assert indented_cpp(p) == [9], indented_cpp(p)


if __name__ == "__main__":
    self_test()
    sys.exit(main(*sys.argv[1:]))
