"""The programs a dispatch benchmark run starts, each in its own Python process (`python
-c`), given the run's settings as JSON: the product's dispatcher (`DISPATCHER`, one tick's
`dispatch_due` from the due instant) and the naive design (`NAIVE`, one APScheduler 3 date
job per nudge). Each prints one JSON line of what it did and what it cost."""

DISPATCHER = r"""
import datetime as dt, json, resource, sys, time
from coachbot.runtime import build_runtime
from coachbot.services import dispatch, tick
from coachbot.settings import Settings

args = json.loads(sys.argv[1])
runtime = build_runtime(Settings(**args["settings"]))
due = dt.datetime.fromtimestamp(args["due"], dt.UTC)
# Start at the due instant, as a clock tick would.
time.sleep(max(0.0, args["due"] - time.time()))
cpu0 = time.process_time()
summary = tick.TickSummary()
dispatch.dispatch_due(runtime.session_factory, runtime.gateway, runtime.library,
                      runtime.settings, due, summary)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"sent": summary.sent, "cpu": time.process_time() - cpu0,
                  "cpu_total": usage.ru_utime + usage.ru_stime,
                  "rss_kib": usage.ru_maxrss, "summary": summary.as_text()}))
"""

NAIVE = r"""
import datetime as dt, json, os, resource, signal, sys, threading, time
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from bench.baseline_job import send_one
from coachbot.runtime import build_runtime
from coachbot.settings import Settings
from coachbot.sms.gateway import SendFailure

args = json.loads(sys.argv[1])
runtime = build_runtime(Settings(**args["settings"]))
jobstore_url = args["jobstore_url"]
done = threading.Semaphore(0)

def send_nudge(nudge_id):
    # The naive job (bench.baseline_job): load, render, send, record.
    try:
        send_one(runtime, nudge_id)
    except SendFailure:
        pass
    finally:
        done.release()

def report(cpu0, cpu_add, add_seconds, added_at, cut):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"sent": len(args["ids"]), "cpu": time.process_time() - cpu0,
                      "cpu_total": usage.ru_utime + usage.ru_stime,
                      "rss_kib": usage.ru_maxrss, "add_seconds": add_seconds,
                      "added_at": added_at, "cpu_add": cpu_add, "cut": cut}), flush=True)

if __name__ == "__main__":
    ids = args["ids"]
    due = dt.datetime.fromtimestamp(args["due"], dt.UTC)
    cpu0 = time.process_time()
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=jobstore_url)},
        executors={"default": ThreadPoolExecutor(32)},
        job_defaults={"misfire_grace_time": 3600, "coalesce": False},
        timezone=dt.UTC,
    )
    scheduler.start(paused=True)
    t0 = time.time()
    for nudge_id in ids:
        scheduler.add_job(send_nudge, "date", run_date=due, args=[nudge_id],
                          id=f"nudge-{nudge_id}")
    added_at = time.time()
    add_seconds = added_at - t0
    cpu_add = time.process_time() - cpu0
    # A harness with a time budget stops the run with SIGTERM: report, then leave at once.
    signal.signal(signal.SIGTERM,
                  lambda *_: (report(cpu0, cpu_add, add_seconds, added_at, True), os._exit(0)))
    scheduler.resume()
    for _ in ids:
        done.acquire()
    scheduler.shutdown(wait=True)
    report(cpu0, cpu_add, add_seconds, added_at, False)
"""
