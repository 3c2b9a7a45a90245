"""The under-reporting study: does the bias audit see it when an agency under-records one group?

`run_bias_study` (the study and its report), `reweighting_study` (reweighting measured as a
mitigation) and `write_demo_record` (the demo champion's transparency record); the command line
is `python -m experiments.bias_study study|reweighting|record ...`. See docs/fairness.md.
"""

from experiments.bias_study._arms import BiasStudy, StudyArm
from experiments.bias_study._cli import main
from experiments.bias_study._record import write_demo_record
from experiments.bias_study._report import study_report, study_summary, write_study
from experiments.bias_study._reweighting import reweighting_study
from experiments.bias_study._study import audit_group, run_bias_study

__all__ = [
    "BiasStudy",
    "StudyArm",
    "audit_group",
    "main",
    "reweighting_study",
    "run_bias_study",
    "study_report",
    "study_summary",
    "write_demo_record",
    "write_study",
]
