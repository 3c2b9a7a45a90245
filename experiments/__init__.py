"""Experiments: the layer above models that needs MLflow, the bias audit or the synthetic city.

- the model's life cycle: `training` (train, then audit the holdout), `registry` (MLflow runs and
  the champion), `promotion` and `gates` (promotion and its records), `run_artifacts`,
  `model_card`, `transparency` (templates in `templates/`, rendered by `markdown`), `overrides`;
- `tracking`: the one module that talks to MLflow; `plots`, `shap_plots`: charts;
- `fairness/`: the bias audit, the fairness gate and accepted findings; `bias_study/`;
- `city/`: the synthetic city; `simulation/`: policy simulation and outcome measures.

Each module is imported on its own (`from experiments.city import generate_city`) so that the heavy
libraries (mlflow, shap) load only where they are used.
"""
