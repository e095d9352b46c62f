#!/usr/bin/env python3
"""The soak of scripts/soak: MINUTES of mixed load on a release build — a consumer reading and searching, a feeder
PATCHing capacities, a caller the whitelist refuses, a reset every 5 minutes — sampled every 10 s (server RSS,
latency p50/p99, unexpected answers, journal rows). Prints the figures and the verdicts (RSS growth after warm-up
< 10 %, journal within --journal-max-rows, no error drift) and writes soak.png (RSS and latency over time) and
soak.json into OUT. Usage: soak.py BINARY DATA_DIR OUT MINUTES"""
import json, os, signal, sqlite3, statistics, subprocess, sys, threading, time

import requests

sys.path.insert(0, os.path.dirname(__file__))
import bench_feed  # noqa: E402

binary, folder, out, minutes = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
MAX_ROWS = 20000
RESET_SECONDS = float(os.environ.get("RESET_SECONDS", "300"))
os.makedirs(out, exist_ok=True)
ready = folder + "/ready.json"
server = subprocess.Popen([binary, "serve", "--data-dir", folder, "--port", "0", "--admin-port", "0", "--key-type", "p256",
                           "--journal-max-rows", str(MAX_ROWS), "--ready-file", ready],
                          stdout=subprocess.DEVNULL, stderr=open(folder + "/err.log", "w"))
while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
    time.sleep(0.05)
info = json.load(open(ready))
tls, admin, pki = info["tls"], info["admin"], folder + "/pki"
ROR = {"Ror-Profil-Utilisateur-Code": "CU22", "Ror-Profil-Utilisateur-System": "1.2.250.1.213.1.6.1.66",
       "Ror-Role-Metier-Code": "AUTOMATE", "Ror-Role-Metier-System": "1.2.250.1.213.1.1.4.6"}
lock = threading.Lock()
latencies, unexpected, counts = [], [], {"requests": 0}
stop = threading.Event()


def session(client):
    s = requests.Session()
    s.trust_env = False
    s.verify, s.cert = pki + "/ca-bundle.pem", (pki + "/clients/%s/cert.pem" % client, pki + "/clients/%s/key.pem" % client)
    return s


def timed(call, expected):
    began = time.perf_counter()
    try:
        response = call()
        status = response.status_code
    except requests.RequestException as error:
        status = str(error)[:80]
    with lock:
        latencies.append((time.perf_counter() - began) * 1000)
        counts["requests"] += 1
        if status not in expected:
            unexpected.append(status)
    return status


def token(s, client_id):
    return s.post(tls + "/auth/realms/ror/protocol/openid-connect/token",
                  data={"grant_type": "client_credentials", "client_id": client_id}).json()["access_token"]


def consumer():
    s = session("ror-consumer")
    headers, fetched = dict(ROR), 0
    while not stop.is_set():
        if time.time() - fetched > 240:
            headers["Authorization"], fetched = "Bearer " + token(s, "esante-sandbox-consumer"), time.time()
        # 401 when a reset took the token's client away between two fetches is not an error of the server.
        timed(lambda: s.get(tls + "/ws-diffusion-fhir/Location/loc-00001-1", headers=headers), {200, 401})
        timed(lambda: s.get(tls + "/ws-diffusion-fhir/HealthcareService?location.capacity-status=02&_include=HealthcareService:location&_count=20",
                            headers=headers), {200, 401})


def feeder():
    s = session("ror-feeder")
    n, fetched, headers = 0, 0, {"Content-Type": "application/fhir+json"}
    while not stop.is_set():
        if time.time() - fetched > 240:
            headers["Authorization"], fetched = "Bearer " + token(s, "esante-sandbox-feeder"), time.time()
        n += 1
        timed(lambda: s.patch(tls + "/ws-synchro-dispo-lits-fhir/Location?identifier=1759000001/LIT000011",
                              data=bench_feed.body(n % 50, "01"), headers=headers), {200, 401})


def stranger():
    s = session("not-whitelisted")
    while not stop.is_set():
        timed(lambda: s.get(tls + "/ws-diffusion-fhir/Location?_count=1"), {403})
        time.sleep(0.05)


def rss(pid, field="VmRSS"):
    """MiB of a /proc status field: VmRSS, or its parts RssAnon (heap), RssFile (mapped files), RssShmem."""
    for line in open("/proc/%d/status" % pid):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return 0.0


threads = [threading.Thread(target=f) for f in (consumer, feeder, stranger)]
for thread in threads:
    thread.start()
samples, started, last_reset = [], time.time(), time.time()
plain = requests.Session()
plain.trust_env = False
while time.time() - started < minutes * 60:
    time.sleep(10)
    if time.time() - last_reset >= RESET_SECONDS:
        plain.post(admin + "/admin/reset", headers={"Origin": admin})
        last_reset = time.time()
    with lock:
        window, latencies[:] = list(latencies), []
        errors, unexpected[:] = list(unexpected), []
        total = counts["requests"]
    db = sqlite3.connect("file:%s/sandbox.sqlite?mode=ro" % folder, uri=True)
    rows = db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    db.close()
    window.sort()
    sample = {"t": round(time.time() - started), "rss": round(rss(server.pid), 1), "anon": round(rss(server.pid, "RssAnon"), 1),
              "file": round(rss(server.pid, "RssFile"), 1), "shmem": round(rss(server.pid, "RssShmem"), 1), "requests": len(window),
              "p50": round(window[len(window) // 2], 2) if window else None,
              "p99": round(window[int(len(window) * 0.99)], 2) if window else None, "unexpected": len(errors),
              "journal": rows, "total": total}
    samples.append(sample)
    print("t=%4ds rss %6.1f MiB (anon %6.1f, file %5.1f, shmem %5.1f)  %5d req  p50 %6s ms  p99 %6s ms  unexpected %d  journal %d" % (
        sample["t"], sample["rss"], sample["anon"], sample["file"], sample["shmem"], sample["requests"], sample["p50"], sample["p99"], sample["unexpected"], rows), flush=True)
stop.set()
for thread in threads:
    thread.join()
server.send_signal(signal.SIGTERM)
server.wait()

# Warm-up ends two minutes after the first reset: a reset rebuilds the database the page caches then refill with,
# and the first one is part of what every path does once. Before it, the heap had never held a rebuilt database.
warm_end = RESET_SECONDS + 130 if minutes * 60 >= RESET_SECONDS + 300 else 130
warm_samples = [s for s in samples if warm_end - 20 <= s["t"] <= warm_end] or [samples[min(11, len(samples) - 1)]]
warm = [s["rss"] for s in warm_samples]
late = [s["rss"] for s in samples[-6:]]
growth = (statistics.median(late) - statistics.median(warm)) / statistics.median(warm) * 100
heap_growth = (statistics.median([s["anon"] for s in samples[-6:]]) - statistics.median([s["anon"] for s in warm_samples])) \
    / statistics.median([s["anon"] for s in warm_samples]) * 100
journal_max = max(s["journal"] for s in samples)
errors = sum(s["unexpected"] for s in samples)
json.dump({"minutes": minutes, "samples": samples, "rssGrowthPercent": growth, "heapGrowthPercent": heap_growth,
           "warmUpEndsAt": warm_end, "journalMax": journal_max,
           "unexpected": errors}, open(out + "/soak.json", "w"), indent=1)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [s["t"] / 60 for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(t, [s["rss"] for s in samples], color="#0b5cad", label="RSS")
    top.plot(t, [s["anon"] for s in samples], color="#7a4cc2", label="of which heap (RssAnon)")
    top.axvline(warm_end / 60, color="#888888", linestyle=":", label="end of warm-up")
    top.set_ylabel("server memory (MiB)")
    top.legend(loc="upper left")
    top.set_title("esante-sandbox soak: %.0f min of reads, searches, PATCHes, refusals, a reset every %.0f min" % (
        minutes, RESET_SECONDS / 60))
    bottom.plot(t, [s["p50"] for s in samples], label="p50", color="#1a7f37")
    bottom.plot(t, [s["p99"] for s in samples], label="p99", color="#b42318")
    bottom.set_ylabel("latency per 10 s (ms)")
    bottom.set_xlabel("minutes")
    bottom.legend()
    figure.tight_layout()
    figure.savefig(out + "/soak.png", dpi=110)
    plotted = out + "/soak.png"
except ImportError:
    plotted = "(matplotlib not installed: no plot)"
print("soak: %.0f min, %d requests; RSS %.1f → %.1f MiB (%+.1f %% after warm-up, which ends %d s in; heap %+.1f %%); "
      "journal at most %d rows (bound %d); %d unexpected answers; plot %s" % (
          minutes, samples[-1]["total"], statistics.median(warm), statistics.median(late), growth, warm_end, heap_growth,
          journal_max, MAX_ROWS, errors, plotted))
verdict = growth < 10 and journal_max <= MAX_ROWS + 1000 and errors == 0
print("soak %s" % ("passed" if verdict else "FAILED"))
sys.exit(0 if verdict else 1)
