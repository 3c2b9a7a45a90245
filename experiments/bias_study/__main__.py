"""`python -m experiments.bias_study study|reweighting|record ...`."""

from experiments.bias_study._cli import main

main()
