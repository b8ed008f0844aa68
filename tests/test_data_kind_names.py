#!/usr/bin/env python3
"""No file outside data/ decides by a data kind's name.

What a kind means (its keys, streams, widths, whether its samples are images, ...) is a
field of its entry in the kind table (data/kind.hpp, docs/data.md): a comparison such as
`spec.kind == "csv"` anywhere else is a decision the next kind would not reach. This test
reads the kinds' names from their entries in data/ (`.name = "csv"`) and fails, naming the
file and line, when a C++ file outside data/ compares one of them to a string literal
(`== "csv"`, `"idx" !=`, `.compare("csv")`, `strcmp(..., "idx")`). tests/ is left out: the
tests check what data/ does, kind names included.
Usage: test_data_kind_names.py SOURCE_ROOT
"""
import pathlib
import re
import sys

# A kind's entry: `static const DataKind kind{ .name = "csv", ...`
KIND_ENTRY = re.compile(r'\bDataKind\s+\w+\s*\{\s*\.name\s*=\s*"([^"\\]+)"')
SOURCES = ("*.cpp", "*.hpp", "*.cc", "*.h")
SKIP = {"data", "tests", "subprojects", ".git"}


def kind_names(root):
    names = {}
    for path in sorted((root / "data").rglob("*.cpp")):
        for m in KIND_ENTRY.finditer(path.read_text(encoding="utf-8")):
            names[m.group(1)] = path.relative_to(root).as_posix()
    return names


def comparisons(name):
    """Patterns of a comparison between some value and the literal "name"."""
    lit = re.escape(f'"{name}"')
    return [
        re.compile(r'[!=]=\s*(?:[\w:]+\s*\(\s*)?' + lit),  # kind == "csv", != std::string("csv")
        re.compile(lit + r'\s*\)?\s*[!=]='),  # "csv" == kind, string_view("csv") != kind
        re.compile(r'\.compare\s*\(\s*' + lit),  # kind.compare("csv")
        re.compile(r'\bstr(?:n)?cmp\s*\([^;]*' + lit),  # strcmp(kind, "csv")
    ]


def code_of(line):
    """The line without a // comment (a // inside a string literal is kept)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and line.startswith("//", i):
            return line[:i]
    return line


def sources(root):
    for pattern in SOURCES:
        for path in root.rglob(pattern):
            rel = path.relative_to(root)
            top = rel.parts[0]
            if top in SKIP or top.startswith("build"):
                continue
            yield path, rel.as_posix()


def main(root):
    root = pathlib.Path(root)
    errors = []
    names = kind_names(root)
    if len(names) < 2:
        errors.append(f"found {len(names)} data kind(s) in {root}/data (expected csv, idx and any newer ones "
                      "as `DataKind NAME{{.name = \"...\"`): wrong source root, or has the entries' form changed?")
    patterns = {name: comparisons(name) for name in names}
    files = 0
    for path, rel in sorted(sources(root), key=lambda p: p[1]):
        files += 1
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            code = code_of(line)
            for name, pats in patterns.items():
                if any(p.search(code) for p in pats):
                    errors.append(f'{rel}:{number}: compares a value to "{name}", a data kind\'s name '
                                  f'({names[name]}); ask the kind table instead (a field of DataKind, '
                                  f'data/kind.hpp)')
    if files < 40:
        errors.append(f"only {files} C++ files found outside data/ under {root}: wrong source root?")
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{len(names)} data kinds ({', '.join(sorted(names))}), {files} files checked, {len(errors)} problem(s)")
    return 1 if errors else 0


def self_test():
    """The rule can fail: a tree deciding by kind names outside data/ must be refused."""
    import contextlib
    import io
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        for room in ("data", "cli", "train", "bench", "tests"):
            (t / room).mkdir()
        for i in range(40):
            (t / "cli" / f"f{i}.cpp").write_text("")
        (t / "data" / "csv.cpp").write_text('static const DataKind kind{\n    .name = "csv",\n};\n')
        (t / "data" / "tsv.cpp").write_text('const DataKind& tsv() { static const DataKind k{.name = "tsv"}; }\n'
                                             'bool is_csv(const Spec& s) { return s.kind == "csv"; }\n')
        (t / "cli" / "show.cpp").write_text('int a;\nif (ds.kind == "csv") draw();\n')
        (t / "train" / "spec.hpp").write_text('bool f() {\n  return "tsv" != spec.kind;\n}\n')
        (t / "bench" / "b.cpp").write_text('auto k = kind.compare("csv") == 0;\nstd::strcmp(kind, "tsv");\n')
        (t / "cli" / "fine.cpp").write_text('// kind == "csv" in prose\nok = path.ends_with(".csv");\n'
                                            'ok = kind == "csvx";\nputs("a // b"); x = (kind == kCsv);\n')
        (t / "tests" / "t.cpp").write_text('BOOST_TEST(ds.kind == "csv");\n')
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(t)
        text = err.getvalue()
        assert status == 1, "a broken tree passed"
        for where, name in [("cli/show.cpp:2", "csv"), ("train/spec.hpp:2", "tsv"), ("bench/b.cpp:1", "csv"),
                            ("bench/b.cpp:2", "tsv")]:
            assert f'{where}: compares a value to "{name}", a data kind\'s name' in text, (where, text)
        assert text.count("compares a value") == 4, text  # not data/, tests/, comments or other literals

        # Without entries to read the names from, the test refuses to pass vacuously.
        for p in (t / "data").iterdir():
            p.unlink()
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(t)
        assert status == 1 and "found 0 data kind(s)" in err.getvalue(), err.getvalue()


if __name__ == "__main__":
    self_test()
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
