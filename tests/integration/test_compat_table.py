"""The README's table of real servers and docs/real-servers.md say what
the compatibility matrix's rows say (tests/compat/servers.py), without
running the servers (make test-compat does)."""

import os
import sys

from harness import ROOT, check

sys.path.insert(0, os.path.join(ROOT, "tests", "compat"))
import table  # noqa: E402


def test_readme_table_is_generated_from_the_matrix(t):
    err = table.check_readme()
    check(err is None, err)


def test_recipes_show_each_rows_configuration(t):
    err = table.check_recipes()
    check(err is None, err)
