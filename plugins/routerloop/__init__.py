"""routerloop: closes the feedback loop of a support-ticket router.

One module or small subpackage per job: simulation, landing, warehouse, build (dbt), gates, export,
report; cli exposes them all.
The core imports no Airflow: only dags/ and plugins/routerloop_plugin.py do.
"""

__version__ = "0.1.0"
