"""Experiments: the synthetic city, MLflow tracking and registry, fairness audit, policy simulation.

Each module is imported on its own (`from experiments.city import generate_city`) so that the heavy
libraries (mlflow, shap) load only where they are used.
"""
