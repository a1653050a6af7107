"""The sources compile without a warning under flags a packager or a
developer may choose, not only under the Makefile's -O2: gcc's
-Wformat-truncation looks deeper at -O3 and through the null checks of a
recoverable -fsanitize=undefined. (A package build does not stop at a
warning, WERROR= in debian/rules; development and CI builds do.)"""

import glob
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from harness import ROOT, Skip, fail, timeout

WARN = ["-std=gnu11", "-D_GNU_SOURCE", '-DFUGUE_VERSION="0"', "-Wall", "-Wextra",
        "-Werror", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes"]
FLAG_SETS = [
    ["-O3", "-g"],
    ["-O1", "-g", "-fsanitize=address,undefined"],
]


def _compile(args):
    src, flags, out = args
    r = subprocess.run(["gcc"] + WARN + flags + ["-c", "-o", out, src],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    return src, flags, r.returncode, r.stderr


@timeout(240)
def test_sources_compile_warning_free_under_other_flags(t):
    if shutil.which("gcc") is None:
        raise Skip("no gcc")
    sources = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")))
    sources += [os.path.join(ROOT, "examples", "hello.c"),
                os.path.join(ROOT, "tests", "worker.c")]
    jobs = [(src, flags, t.path("%d-%s.o" % (i, os.path.basename(src))))
            for i, flags in enumerate(FLAG_SETS) for src in sources]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_compile, jobs))
    bad = [(src, flags, err) for src, flags, rc, err in results if rc != 0]
    if bad:
        src, flags, err = bad[0]
        fail("%d of %d compilations failed; first: gcc %s %s:\n%s" % (
            len(bad), len(jobs), " ".join(flags), os.path.relpath(src, ROOT),
            err.strip()[:2000]))


def _clang(args):
    src, extra = args
    r = subprocess.run(["clang"] + WARN + extra + ["-fsyntax-only", src],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    return src, r.returncode, r.stderr


@timeout(240)
def test_sources_and_unit_tests_warning_free_under_clang(t):
    if shutil.which("clang") is None:
        raise Skip("no clang")
    jobs = [(s, []) for s in sorted(glob.glob(os.path.join(ROOT, "src",
                                                           "*.c")))]
    jobs += [(os.path.join(ROOT, "tests", "worker.c"), [])]
    jobs += [(s, ["-Isrc"]) for s in sorted(glob.glob(
        os.path.join(ROOT, "tests", "unit", "check_*.c")))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_clang, jobs))
    bad = [(src, err) for src, rc, err in results if rc != 0]
    if bad:
        fail("%d of %d files warn under clang; first: %s:\n%s" % (
            len(bad), len(jobs), os.path.relpath(bad[0][0], ROOT),
            bad[0][1].strip()[:2000]))
