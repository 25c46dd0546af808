"""routerloop: closes the feedback loop of a support-ticket router.

One module per step: generate, landing, build (dbt), gates, export, report; cli exposes them all.
The core imports no Airflow: only dags/ and plugins/routerloop_plugin.py do.
"""

__version__ = "0.1.0"
