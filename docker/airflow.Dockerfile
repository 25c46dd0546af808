# The image of every Airflow service of docker-compose.airflow.yml: Airflow's own image with routerloop's
# exact pins (requirements.txt: Airflow 3.3.2, the Celery provider, dbt, Great Expectations...).
# The code itself (dags, plugins with the routerloop package, dbt_project, expectations, reference) is
# mounted, not copied: `docker compose restart` picks up a new checkout.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
# The routerloop package is the mounted plugins/ folder (laid out as in the repository, under /opt/routerloop).
ENV PYTHONPATH=/opt/routerloop/plugins
WORKDIR /opt/routerloop
