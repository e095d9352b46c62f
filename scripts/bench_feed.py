#!/usr/bin/env python3
"""Helpers of scripts/bench-feed: the PATCH body, a load generator recording every acknowledged version, the check."""
import argparse, hashlib, http.client, json, os, socket, sqlite3, ssl, sys, threading, time

CAPACITY = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity"
# The demo feeder's places in the repository seeds, with their capacity nature (01 beds, 02 places).
NATURES = {"1759000001/LIT000011": "01", "1759000001/LIT000012": "01", "1759000009/LIT000051": "02", "1759000009/LIT000052": "01"}


def nos(tre):
    return "https://mos.esante.gouv.fr/NOS/%s/FHIR/%s" % (tre, tre.replace("_", "-"))


def body(count=5, nature="01"):
    def cc(url, tre, code):
        return {"url": url, "valueCodeableConcept": {"coding": [{"system": nos(tre), "code": code}]}}
    def where(url, code):
        return "extension.where(url='%s' and valueCodeableConcept.coding.code='%s')" % (url, code)
    path = "Location.extension.where(url='%s').where(%s)" % (CAPACITY, " and ".join([
        where("capacityStatus", "02"), where("temporalityCapacity", "01"), where("genderCapacityAvailable", "03"), where("temporaryAssignement", "01")]))
    value = {"url": CAPACITY, "extension": [
        cc("capacityStatus", "TRE_R330-TypeStatutCapacite", "02"), cc("capacityType", "TRE_R329-NatureCapacite", nature),
        cc("temporalityCapacity", "TRE_R331-TemporaliteCapacite", "01"), cc("capacitySourceType", "TRE_R335-TypeSourceCapacite", "02"),
        cc("genderCapacityAvailable", "TRE_R332-GenreCapacite", "03"), cc("temporaryAssignement", "TRE_R337-AffectationTemporaire", "01"),
        {"url": "nbCapacity", "valueInteger": count}, {"url": "capacityUpdateDate", "valueDateTime": "2026-11-22T10:00:00+01:00"}]}
    return json.dumps({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": path}, {"name": "value", "valueExtension": value}]}]})


def load(args):
    places = list(NATURES)
    acked, lock = [], threading.Lock()

    def client(place):
        context = ssl.create_default_context(cafile=args.cacert)
        context.load_cert_chain(args.cert, args.key)
        connection = http.client.HTTPSConnection("127.0.0.1", args.port, context=context, timeout=5)
        n = 0
        while True:
            n += 1
            try:
                connection.request("PATCH", "/ws-synchro-dispo-lits-fhir/Location?identifier=" + place, body=body(n % 50, NATURES[place]),
                                   headers={"Content-Type": "application/fhir+json", "Authorization": "Bearer " + args.token})
                response = connection.getresponse()
                payload = response.read()
            except Exception:
                return
            if response.status == 200:
                resource = json.loads(payload)
                with lock:
                    acked.append([resource["id"], int(resource["meta"]["versionId"]), hashlib.sha256(payload).hexdigest()])
            elif response.status != 404:
                print("  unexpected", response.status, payload[:200])
                return

    threads = [threading.Thread(target=client, args=(place,)) for place in places]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(acked, open(args.out, "w"))


class Connection:
    """One keep-alive mutual-TLS connection sending prepared request bytes and reading `Content-Length` answers: the
    load generator's own CPU per PATCH is a third of `http.client`'s, which took most of what the 2 cores left to
    the server (8 clients x 0.24 ms per PATCH)."""

    def __init__(self, args):
        context = ssl.create_default_context(cafile=args.cacert)
        context.load_cert_chain(args.cert, args.key)
        self.socket = context.wrap_socket(socket.create_connection(("127.0.0.1", args.port), timeout=10), server_hostname="127.0.0.1")
        self.buffer = b""

    def exchange(self, request):
        self.socket.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self.receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        while len(self.buffer) < length:
            self.receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body

    def receive(self):
        data = self.socket.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buffer += data


def patch_request(args, place, count):
    payload = body(count, NATURES[place]).encode()
    return ("PATCH /ws-synchro-dispo-lits-fhir/Location?identifier=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
            "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (place, args.token, len(payload))).encode() + payload


def _worker(args, place, n, ready, go, queue):
    requests = [patch_request(args, place, i) for i in range(50)]
    connection = Connection(args)
    connection.exchange(requests[0])  # handshake and first answer before the clock starts
    ready.release()
    go.wait()
    times, failures = [], 0
    for i in range(n):
        started = time.perf_counter()
        status, _ = connection.exchange(requests[i % 50])
        times.append((time.perf_counter() - started) * 1000)
        failures += status != 200
    queue.put((times, failures))


def throughput(args):
    """`--clients` processes (one keep-alive connection each, spread over the feeder's places), `--requests` each,
    all connected before the clock starts."""
    import multiprocessing, resource
    places = list(NATURES)
    queue, ready, go = multiprocessing.Queue(), multiprocessing.Semaphore(0), multiprocessing.Event()
    workers = [multiprocessing.Process(target=_worker, args=(args, places[i % len(places)], args.requests, ready, go, queue)) for i in range(args.clients)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu_before = children.ru_utime + children.ru_stime
    cpu_before = server_cpu(args.pid)
    started = time.perf_counter()
    go.set()
    results = [queue.get() for _ in workers]
    elapsed = time.perf_counter() - started
    cpu = server_cpu(args.pid) - cpu_before
    for worker in workers:
        worker.join()
    # The clients share the machine's cores with the server: their CPU per PATCH bounds what any server could reach
    # (set-up included: the children's time is known once they have ended).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = children.ru_utime + children.ru_stime - client_cpu_before
    times = sorted(t for r in results for t in r[0])
    failures = sum(r[1] for r in results)
    print("  %d clients x %d PATCHes: %.0f PATCH/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, non-200: %d; CPU per PATCH: server %.2f ms, clients %.2f ms" % (
        args.clients, args.requests, len(times) / elapsed, times[len(times) // 2], times[int(len(times) * 0.99) - 1], times[-1], failures,
        cpu * 1000 / len(times), client_cpu * 1000 / len(times)))


def server_cpu(pid):
    """CPU seconds (user + system) the server process has used."""
    if not pid:
        return 0.0
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def apply_delta(delta, new):
    """The bytes a kept version's delta rebuilds from the next version (the format of Sources/Store/ResourceHistory.swift,
    read again here independently: operations `varint(length << 1 | is_copy)`, then a copy's varint offset or literal bytes)."""
    def varint(position):
        value = shift = 0
        while True:
            byte = delta[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value, position
            shift += 7
    out, position = bytearray(), 0
    while position < len(delta):
        header, position = varint(position)
        length = header >> 1
        if header & 1:
            offset, position = varint(position)
            assert offset + length <= len(new)
            out += new[offset:offset + length]
        else:
            out += delta[position:position + length]
            position += length
    return bytes(out)


def check(args):
    """Every acknowledged version is in the store (current or kept, rebuilt from its delta) with the bytes the client got."""
    acked = json.load(open(args.acked))
    missing = missing_versions(args.db, acked)
    print("  %d PATCHes answered 200 before the kill; after restart %d present with the bytes answered, %d missing or different" % (
        len(acked), len(acked) - len(missing), len(missing)))
    sys.exit(1 if missing else 0)


def missing_versions(db_path, acked):
    """The acknowledged (Location id, version, SHA-256 of the answer) not in the store with those bytes."""
    db = sqlite3.connect(db_path)
    current = {(i, v): (u, bytes(j)) for i, v, u, j in db.execute("SELECT id, version, last_updated, json FROM fhir_resource WHERE type = 'Location'")}
    kept = {(i, v): (u, bytes(j), b) for i, v, u, j, b in db.execute("SELECT id, version, last_updated, json, base_updated FROM fhir_history WHERE type = 'Location'")}
    rebuilt = {}

    def version(key):
        if key in current:
            return current[key]
        if key not in rebuilt:
            updated, data, base = kept[key]
            if base is not None:
                base_updated, base_data = version((key[0], key[1] + 1))
                assert base_updated == base
                data = apply_delta(data, base_data)
            rebuilt[key] = (updated, data)
        return rebuilt[key]

    missing = []
    for location, number, digest in acked:
        try:
            ok = hashlib.sha256(version((location, number))[1]).hexdigest() == digest
        except (KeyError, AssertionError, IndexError):
            ok = False
        if not ok:
            missing.append((location, number))
    db.close()
    return missing


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["body", "load", "check", "throughput"])
    for name in ["cacert", "cert", "key", "token", "out", "db", "acked"]:
        parser.add_argument("--" + name)
    parser.add_argument("--port", type=int)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--pid", type=int, help="server process (its CPU time per PATCH is printed)")
    args = parser.parse_args()
    if args.mode == "body":
        print(body())
    elif args.mode == "throughput":
        throughput(args)
    elif args.mode == "load":
        load(args)
    else:
        check(args)
