"""tools/check-layers on small modules of its own (compiled with cc -c in
the test's directory): it reports call and include cycles as concrete
paths and exits 1, and passes an acyclic set, showing its layers."""

import os
import subprocess
import sys

from harness import ROOT, check, fail

TOOL = os.path.join(ROOT, "tools", "check-layers")


def _modules(t, files):
    """Write files {name: text} in t's directory and compile each .c."""
    d = t.path("src")
    os.makedirs(d)
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    for name in files:
        if name.endswith(".c"):
            r = subprocess.run(["cc", "-c", "-o", name[:-2] + ".o", name],
                               cwd=d, capture_output=True, text=True,
                               timeout=30)
            if r.returncode != 0:
                fail("cc -c %s: %s" % (name, r.stderr))
    return d


def _check_layers(d):
    r = subprocess.run([sys.executable, TOOL, "--dir", d, "-v"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def test_check_layers_reports_cycles(t):
    # Calls a -> b -> c -> a; headers x.h -> y.h -> x.h.
    d = _modules(t, {
        "a.c": "int b(void);\nint a(void) { return b(); }\n",
        "b.c": "int c(void);\nint b(void) { return c(); }\n",
        "c.c": "int a(void);\nint c(void) { return a() + 1; }\n",
        "x.h": '#pragma once\n#include "y.h"\n',
        "y.h": '#pragma once\n#include "x.h"\n',
        "x.c": '#include "x.h"\nint x;\n',
    })
    rc, out, err = _check_layers(d)
    check(rc == 1, "exit %d for cycles, want 1: %r %r" % (rc, out, err))
    lines = err.splitlines()
    for want in ("check-layers: call cycle: a -> b -> c -> a",
                 "check-layers: include cycle: x -> y -> x"):
        check(want in lines, "%r not reported: %r" % (want, err))
    check("no cycles" not in out, "passed with cycles: %r" % out)


def test_check_layers_passes_acyclic_modules(t):
    # main -> a -> b, a's header includes b's; b calls a function of main,
    # which does not count (main is never called).
    d = _modules(t, {
        "a.h": '#include "b.h"\nint a(void);\n',
        "b.h": "int b(void);\n",
        "a.c": '#include "a.h"\nint a(void) { return b(); }\n',
        "b.c": '#include "b.h"\nint hook(void);\n'
               "int b(void) { return hook(); }\n",
        "main.c": '#include "a.h"\nint hook(void) { return 0; }\n'
                  "int main(void) { return a(); }\n",
    })
    rc, out, err = _check_layers(d)
    check(rc == 0, "exit %d without cycles: %r %r" % (rc, out, err))
    check(out.splitlines() == ["check-layers: 3 modules, no cycles",
                               "layer 0: b", "layer 1: a", "layer 2: main"],
          "output: %r %r" % (out, err))
