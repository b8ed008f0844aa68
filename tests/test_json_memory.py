"""Reading a JSON file takes memory bounded by its size times a small constant (docs/limits.md,
"Memory to read a JSON file"), and under an address-space limit (ulimit -v) a file too big to
hold is refused with exit 2 naming it: never a signal. A 60 MB file of `{}` took 2.3 GB, and
under a limit one run in three died of SIGABRT while the half-built document was taken apart.

Usage: test_json_memory.py BUILD_DIR [SANITIZE]

SANITIZE is meson's b_sanitize. AddressSanitizer reserves terabytes of address space for its
shadow memory when a program starts, so under `ulimit -v` an ASan build dies before main():
there only the checks without a limit run (the release build runs them all).
"""
import os
import resource
import subprocess
import sys
import tempfile

MIB = 1 << 20


def run(exe, path, limit_mib=None):
    def limit():
        if limit_mib is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_mib * MIB, limit_mib * MIB))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", CHAINRULE_BLAS_KERNEL="keep")
    env.pop("OPENBLAS_CORETYPE", None)
    return subprocess.run([exe, "check", path], capture_output=True, text=True, preexec_fn=limit, env=env,
                          timeout=300)


def expect(cond, what, r=None):
    if not cond:
        detail = f"\n  exit {r.returncode}\n  stdout: {r.stdout[-500:]}\n  stderr: {r.stderr[-500:]}" if r else ""
        sys.exit(f"FAIL: {what}{detail}")


def main(build, sanitize="none"):
    limits_work = "address" not in sanitize
    if not limits_work:
        print("AddressSanitizer build: its shadow memory needs more address space than any ulimit -v "
              "here allows, so only the runs without a limit are checked")
    exe = os.path.join(build, "cli", "chainrule")
    if not os.path.exists(exe):
        exe = os.path.join(build, "chainrule")
    with tempfile.TemporaryDirectory() as tmp:
        # 20 MB of empty objects under a key the loader does not know: the document is held
        # (about 27 bytes per byte) or refused for want of address space, then "unknown key".
        empties = os.path.join(tmp, "empties.json")
        with open(empties, "w") as f:
            # (Under ASan, where no limit is tried, 2 MB show the same and build 10 times faster.)
            f.write('{"junk": [' + ",".join(["{}"] * ((7 if limits_work else 1) * MIB)) + "]}")
        for limit in (450, 600, 800, 1000, 1400, None) if limits_work else (None,):
            for attempt in range(2):
                r = run(exe, empties, limit)
                expect(r.returncode >= 0, f"ulimit -v {limit} MiB, run {attempt}: killed by signal {-r.returncode}", r)
                expect(r.returncode == 2, f"ulimit -v {limit} MiB: exit 2 expected", r)
                expect("empties.json" in r.stderr, f"ulimit -v {limit} MiB: the message names the file", r)
                expect("unknown key 'junk'" in r.stderr or "address space left" in r.stderr,
                       f"ulimit -v {limit} MiB: 'unknown key' or the address space, not another error", r)
        if limits_work:
            r = run(exe, empties, 450)
            expect("would take" in r.stderr and "ulimit -v" in r.stderr, "450 MiB: refused before it is built", r)
        r = run(exe, empties)
        expect("unknown key 'junk'" in r.stderr, "no limit: the document is held and its key refused", r)

        # One-element arrays nested 60 deep, over and over: about 48 bytes of memory for each
        # byte of text, more than the 40 a document may take.
        nested = os.path.join(tmp, "nested.json")
        unit = "[" * 60 + "0" + "]" * 60
        with open(nested, "w") as f:
            f.write("[" + ",".join([unit] * (20 * MIB // len(unit))) + "]")
        for limit in (450, None) if limits_work else (None,):
            r = run(exe, nested, limit)
            expect(r.returncode == 2, f"nested, ulimit -v {limit}: exit 2", r)
            expect("nested.json: the JSON document would take" in r.stderr and "for each of its" in r.stderr,
                   f"nested, ulimit -v {limit}: refused by the bytes-per-byte cap, naming the file", r)
    print("ok")


if __name__ == "__main__":
    main(*sys.argv[1:3])
