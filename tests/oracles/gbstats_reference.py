"""Test oracle: GrowthBook's gbstats computes the sequential figures of marts.ab_results.

Every gbstats release pins numpy < 2 and pandas < 2, older than the project's own pins, so gbstats lives in
a throwaway venv of its own under `.routerloop/gbstats-venv` (created by the first test session that needs
it, from tests/gbstats-requirements.txt, exact pins; reused afterwards) and runs there as a subprocess:
cases go in as JSON on stdin, figures come back as JSON on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "gbstats-requirements.txt"

# Runs inside the gbstats venv. A case: kind (binary | continuous) and n, sum, sum_squares of control (a)
# and variant (b). Out: per case the p-value and CI of the absolute and of the relative difference, or
# None where gbstats returns its uninformative default (zero variance, control mean 0).
_SCRIPT = r"""
import json, sys
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

request = json.load(sys.stdin)
def stat(kind, n, s, ss):
    return ProportionStatistic(n=n, sum=s) if kind == "binary" else SampleMeanStatistic(n=n, sum=s, sum_squares=ss)
out = []
for case in request["cases"]:
    a = stat(case["kind"], case["n_a"], case["sum_a"], case["ss_a"])
    b = stat(case["kind"], case["n_b"], case["sum_b"], case["ss_b"])
    figures = {}
    for difference_type in ("absolute", "relative"):
        config = SequentialConfig(difference_type=difference_type, alpha=request["alpha"],
                                  sequential_tuning_parameter=request["tuning_parameter"])
        result = SequentialTwoSidedTTest(a, b, config).compute_result()
        ok = result.error_message is None
        figures[difference_type] = {"p_value": result.p_value if ok else None, "ci": list(result.ci) if ok else None}
    out.append(figures)
json.dump(out, sys.stdout)
"""


def _python() -> Path:
    home = ROOT / ".routerloop" / "gbstats-venv"
    python = home / "bin" / "python"
    marker = home / "requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "-r", str(REQUIREMENTS)], check=True, capture_output=True)
        marker.write_text(wanted)
    return python


def sequential_figures(cases: list[dict], alpha: float, tuning_parameter: float) -> list[dict]:
    """gbstats' SequentialTwoSidedTTest on each case (see _SCRIPT for the shapes)."""
    request = json.dumps({"cases": cases, "alpha": alpha, "tuning_parameter": tuning_parameter})
    done = subprocess.run([str(_python()), "-c", _SCRIPT], input=request, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"gbstats reference failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)
