#!/usr/bin/python3
"""A task-mgmt worker in Python: takes runs of one task type from the RabbitMQ queue.

It speaks the same protocol as `task-mgmt worker`: a queue message is {"runId": "..."}; the run
record lives in the shared PostgreSQL run store (the `runs` table). For each message the worker
reads the run, takes it with a conditional UPDATE (queued -> running), does the work, records
the outcome (running -> succeeded or failed), commits, and only then acks the message.

The task it handles is deliberately tiny: the SHA-256 of the run's `text` parameter, written to
the run's metadata as {"sha256": ..., "worker": "python"}.

Environment:
  AMQP_URL      amqp://user:password@host:5672/vhost (default amqp://guest:guest@127.0.0.1:5672)
  QUEUE_NAME    the queue runs travel on (default task-mgmt.runs)
  DATABASE_URL  postgres://user@host:5432/db, the app's run store (required)
  PG_SCHEMA     the schema holding the tables, when not the default search_path (optional)
  WORKER_ID     recorded in runs.worker_id while a run is held (default python-<host>-<pid>)
  TASK_TYPE     the task type this worker handles (default demo/sha256)
  LEASE_MS      how long a taken run is held before the app may queue it again (default 30000)
  ONCE=1        exit after one run has been taken and finished

Debian packages: python3-pika, python3-psycopg2.
"""

import hashlib
import json
import logging
import os
import signal
import socket
import sys
import time

import pika
import pika.exceptions
import psycopg2
from psycopg2 import sql

log = logging.getLogger("python-worker")


def now_ms():
    """The run store keeps times as epoch milliseconds."""
    return int(time.time() * 1000)


class Config:
    def __init__(self, env):
        self.amqp_url = env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
        self.queue_name = env.get("QUEUE_NAME") or "task-mgmt.runs"
        self.database_url = env.get("DATABASE_URL", "")
        self.pg_schema = env.get("PG_SCHEMA") or None
        self.worker_id = env.get("WORKER_ID") or "python-%s-%d" % (socket.gethostname(), os.getpid())
        self.task_type = env.get("TASK_TYPE") or "demo/sha256"
        self.lease_ms = int(env.get("LEASE_MS") or "30000")
        self.once = env.get("ONCE") == "1"
        if not self.database_url:
            raise SystemExit("DATABASE_URL is required (postgres://user@host:5432/db)")


def run_task(params):
    """The work itself. Raising marks the run failed with the exception as its error."""
    text = params.get("text")
    if not isinstance(text, str):
        raise ValueError('the run has no string parameter "text"')
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "worker": "python"}


class Worker:
    def __init__(self, config):
        self.config = config
        self.stopping = False
        self.finished_runs = 0
        self.db = None

    # --- run store -------------------------------------------------------------------------

    def connect_db(self):
        self.db = psycopg2.connect(self.config.database_url)
        if self.config.pg_schema:
            with self.db.cursor() as cur:
                cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.config.pg_schema)))
            self.db.commit()

    def read_run(self, run_id):
        with self.db.cursor() as cur:
            cur.execute("SELECT task_type, state, params FROM runs WHERE id = %s", (run_id,))
            row = cur.fetchone()
        self.db.commit()
        if row is None:
            return None
        task_type, state, params = row
        return {"task_type": task_type, "state": state, "params": json.loads(params)}

    def take(self, run_id):
        """queued -> running; True when this worker now holds the run."""
        at = now_ms()
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE runs SET state='running', worker_id=%s, lease_until=%s, started_at=%s, updated_at=%s"
                " WHERE id=%s AND state='queued'",
                (self.config.worker_id, at + self.config.lease_ms, at, at, run_id),
            )
            taken = cur.rowcount == 1
        self.db.commit()
        return taken

    def renew_lease(self, run_id):
        """For long tasks: call every LEASE_MS / 3, or the app queues the run again."""
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE runs SET lease_until=%s WHERE id=%s AND state='running' AND worker_id=%s",
                (now_ms() + self.config.lease_ms, run_id, self.config.worker_id),
            )
            held = cur.rowcount == 1
        self.db.commit()
        return held

    def succeed(self, run_id, metadata):
        at = now_ms()
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE runs SET state='succeeded', exit_code=0, metadata=%s, finished_at=%s, updated_at=%s,"
                " worker_id=NULL, lease_until=NULL WHERE id=%s AND state='running'",
                (json.dumps(metadata), at, at, run_id),
            )
            recorded = cur.rowcount == 1
        self.db.commit()
        return recorded

    def fail(self, run_id, error):
        at = now_ms()
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE runs SET state='failed', error=%s, finished_at=%s, updated_at=%s,"
                " worker_id=NULL, lease_until=NULL WHERE id=%s AND state='running'",
                (error, at, at, run_id),
            )
            recorded = cur.rowcount == 1
        self.db.commit()
        return recorded

    # --- one message -------------------------------------------------------------------------

    def handle(self, channel, method, body):
        try:
            message = json.loads(body)
            run_id = message["runId"]
            if not isinstance(run_id, str) or not run_id:
                raise ValueError("runId is not a non-empty string")
        except (ValueError, KeyError, TypeError) as error:
            # Not a run message: reject without requeueing, so it goes to the dead-letter queue.
            log.warning("rejecting a message that is not a run message (%s): %r", error, body[:200])
            channel.basic_nack(method.delivery_tag, requeue=False)
            return

        run = self.read_run(run_id)
        if run is None:
            log.info("run %s: skipped, not in this run store", run_id)
            channel.basic_ack(method.delivery_tag)
            return
        if run["task_type"] != self.config.task_type:
            log.info("run %s: skipped, its task type is %s, not %s", run_id, run["task_type"], self.config.task_type)
            channel.basic_ack(method.delivery_tag)
            return
        if run["state"] != "queued":
            log.info("run %s: skipped, it is %s, not queued", run_id, run["state"])
            channel.basic_ack(method.delivery_tag)
            return
        if not self.take(run_id):
            log.info("run %s: skipped, another worker took it first", run_id)
            channel.basic_ack(method.delivery_tag)
            return

        log.info("run %s: taken as %s", run_id, self.config.worker_id)
        started = time.monotonic()
        try:
            metadata = run_task(run["params"])
        except Exception as error:  # the task's failure is the run's outcome
            log.warning("run %s: failed: %s", run_id, error)
            recorded = self.fail(run_id, "%s: %s" % (type(error).__name__, error))
            outcome = "failed"
        else:
            recorded = self.succeed(run_id, metadata)
            outcome = "succeeded"
        if recorded:
            log.info("run %s: %s in %.0f ms", run_id, outcome, (time.monotonic() - started) * 1000)
        else:
            log.warning("run %s: no longer running here (cancelled or queued again), outcome not recorded", run_id)
        # The outcome is committed; only now may the message go.
        channel.basic_ack(method.delivery_tag)
        self.finished_runs += 1

    # --- the loop ------------------------------------------------------------------------------

    def run(self):
        self.connect_db()
        params = pika.URLParameters(self.config.amqp_url)
        params.client_properties = {"connection_name": "task-mgmt python worker %s" % self.config.worker_id}
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            # Passive: the app declares the queue with its arguments (quorum, dead-lettering,
            # delivery limit, consumer timeout); declaring it with other ones would be refused.
            try:
                channel.queue_declare(self.config.queue_name, passive=True)
            except pika.exceptions.ChannelClosedByBroker as error:
                log.error("queue %s does not exist yet (%s); start the app, which declares it", self.config.queue_name, error)
                return 1
            channel.basic_qos(prefetch_count=1)
            log.info("consuming %s for task type %s as %s", self.config.queue_name, self.config.task_type, self.config.worker_id)
            for method, _properties, body in channel.consume(self.config.queue_name, auto_ack=False, inactivity_timeout=1):
                if method is not None:
                    self.handle(channel, method, body)
                if self.stopping:
                    log.info("stopping on SIGTERM")
                    break
                if self.config.once and self.finished_runs >= 1:
                    log.info("ONCE=1: one run finished, exiting")
                    break
            # Unacked prefetched messages (none, with prefetch 1 and the ack above) go back to the queue.
            channel.cancel()
            return 0
        finally:
            if connection.is_open:
                connection.close()
            if self.db is not None:
                self.db.close()

    def stop(self, _signum, _frame):
        self.stopping = True


def main():
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pika narrates every connection step at INFO; its warnings and errors are enough.
    logging.getLogger("pika").setLevel(logging.WARNING)
    worker = Worker(Config(os.environ))
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
