#!/usr/bin/env python3
"""Lambda cold-start figures for `make bench` (run inside scripts/with_moto.py), as Lambda runs a
function:

- each binary runs in a cgroup whose CPU quota is Lambda's share for a memory size (one vCPU at
  1,769 MB, proportionally less below, in 20 ms periods), for each size in LAMBDA_BENCH_MEMORY;
- its first DynamoDB call goes over real TLS, to a local TLS front for moto whose CA is added to
  the roots the functions trust by default, Amazon Trust Services' five (a file named by
  OTP_AWS_TRUST_ROOTS), and to the system's CA bundle (SSL_CERT_FILE, for the Python peer and
  Twilio's client), so the roots parsed are as many as on Lambda; each service (DynamoDB, Secrets
  Manager, SES) has its own front, on its own port, as each has its own host in AWS: no
  connection serves two services;
- init: exec to the first poll of the Runtime API (`GET .../next`); first response: exec to the
  POST of the first invocation's response (a real API Gateway event); CPU: the process's CPU time
  from exec to that POST (all threads, from /proc/PID/task/*/schedstat); medians of RUNS starts,
  taken in rounds of one start per row, so drift in the host's speed hits every row alike.
  The clock starts at the exec, as the child reports it: the harness's fork and cgroup move before
  it (column "fork", about 20 ms on this host) are not the function's;
- peak RSS (VmHWM) after that first invocation; binary size (stripped release);
- send-code twice: an email (SES over the TLS front) and an SMS (to a local Twilio fake).

Compared in the same run with a hello-world `lambda_http` binary built with the same profile.
Needs root (it writes /sys/fs/cgroup/cpu); it says so and stops otherwise.
Rows "as deployed" read every secret from Secrets Manager at init (over the TLS front), in the
formats template.yaml generates, with API-key auth on: the HMAC key, the API keys and the token
seed (verify-code), the HMAC key and the API keys (send-code, email). Each row's CPU to first
response is also given as a ratio to hello-world's in the same run (issue goal: <= 3x).
LAMBDA_BENCH_ROWS="verify-code as deployed,python" runs only the rows named (and hello-world's).
LAMBDA_BENCH_KEY_FROM_SECRET=1 reads the HMAC key from Secrets Manager in the other rows too;
LAMBDA_BENCH_LOG=LEVEL (e.g. info, what a deployed function logs at) runs the functions at that
level and keeps their logs in target/lambda-bench.log (the "function ready" line times the init).
"""
import json
import os
import secrets
import string
import pathlib
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "scripts"))
import lambda_runtime  # noqa: E402
import otp_aws  # noqa: E402
import tls_front  # noqa: E402
import twilio_fake  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = pathlib.Path(os.environ.get("LAMBDA_BENCH_RELEASE", ROOT / "target" / "release"))
RUNS = int(os.environ.get("LAMBDA_BENCH_RUNS", "15"))
MEMORY_SIZES = [int(m) for m in os.environ.get("LAMBDA_BENCH_MEMORY", "128,256,1769").split(",")]
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup/cpu")
PERIOD_US = 20_000
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL") or sys.exit("lambda_init: run inside scripts/with-moto.sh")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_ms(pid):
    """CPU time of every thread of `pid` so far."""
    total = 0
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e6


class CpuShare:
    """A cgroup (v1 `cpu` controller) with Lambda's CPU share for `memory_mb`."""

    def __init__(self, memory_mb):
        self.path = CGROUP_ROOT / f"otp-bench-{os.getpid()}-{memory_mb}"
        try:
            self.path.mkdir(exist_ok=True)
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            quota = max(1000, round(PERIOD_US * min(memory_mb, 1769) / 1769))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as error:
            sys.exit(f"lambda_init: cannot set a CPU quota in {CGROUP_ROOT} ({error}); run as root "
                     "on a host with the cgroup v1 cpu controller")

    def join(self):
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self):
        try:
            self.path.rmdir()
        except OSError:
            pass


def start_once(binary, event, env, share):
    log = os.environ.get("LAMBDA_BENCH_LOG")
    output = open(ROOT / "target" / "lambda-bench.log", "ab") if log else subprocess.DEVNULL
    try:
        with lambda_runtime.Invocation(binary, [event], env, output, share.join) as invocation:
            response = json.loads(invocation.wait()[0])
            cpu = cpu_ms(invocation.process.pid) - invocation.cpu_before_exec_ms
            rss = peak_rss_kib(invocation.process.pid)
            state, started = invocation.state, invocation.started
            return ((state["poll"] - started) * 1000, (state["response_at"] - started) * 1000,
                    cpu, rss, (started - invocation.forked) * 1000, response.get("statusCode"))
    finally:
        if log:
            output.close()


def main():
    table = f"otp-bench-{os.getpid()}"
    otp_aws.create_table(ENDPOINT, table)
    otp_aws.verify_identity(ENDPOINT, "bench.example.com")
    bundle = tls_front.make_certificates(ROOT / "target" / "bench-tls")
    moto_port = int(ENDPOINT.rsplit(":", 1)[1])
    fronts = {service: tls_front.TlsFront(ROOT / "target" / "bench-tls", moto_port)
              for service in ("DYNAMODB", "SECRETS_MANAGER", "SESV2")}
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "SSL_CERT_FILE": str(bundle),
        "OTP_AWS_TRUST_ROOTS": str(bundle.parent / "amazon-roots.pem"),
        **{f"AWS_ENDPOINT_URL_{service}": f"https://127.0.0.1:{front.port}" for service, front in fronts.items()},
        "OTP_TABLE_NAME": table, "OTP_HASH_KEY": "ab" * 32, "OTP_TOKEN_SIGNING_KEY": "cd" * 32,
        # The development key the sample events carry (lambda.env).
        "OTP_API_KEYS": "local=otpk_local-dev-key-not-a-secret-0123456789",
        "EMAIL_FROM": "no-reply@bench.example.com", "RUST_LOG": "warn",
    }
    if os.environ.get("LAMBDA_BENCH_KEY_FROM_SECRET"):
        # As the template deploys it: the key is read from Secrets Manager at init (over TLS).
        del env["OTP_HASH_KEY"]
        env["OTP_HASH_KEY_SECRET_ARN"] = otp_aws.client("secretsmanager", ENDPOINT).create_secret(
            Name=f"otp-bench-key-{os.getpid()}", SecretString="ab" * 32)["ARN"]
        env["RUST_LOG"] = "info"
    # A deployed function logs at INFO (a line per request); LAMBDA_BENCH_LOG=info measures that.
    env["RUST_LOG"] = os.environ.get("LAMBDA_BENCH_LOG", env["RUST_LOG"])
    # As the template deploys the functions: every secret in Secrets Manager.
    manager = otp_aws.client("secretsmanager", ENDPOINT)
    alphabet = string.ascii_letters + string.digits

    def secret(name, value):
        return manager.create_secret(Name=f"otp-bench-{name}-{os.getpid()}", SecretString=value)["ARN"]

    generated = lambda: "".join(secrets.choice(alphabet) for _ in range(64))  # noqa: E731
    deployed = {
        "OTP_HASH_KEY": None, "OTP_TOKEN_SIGNING_KEY": None, "OTP_API_KEYS": None,
        "OTP_HASH_KEY_SECRET_ARN": secret("hash-key", generated()),
        "OTP_TOKEN_SIGNING_KEY_SECRET_ARN": secret("token-key", generated()),
        "OTP_API_KEYS_SECRET_ARN": secret(
            "api-keys", json.dumps({"name": "local", "key": "otpk_local-dev-key-not-a-secret-0123456789"})),
    }
    events = ROOT / "events"
    # The SMS goes to a local Twilio fake over plain HTTP: what is measured is our side (the
    # Twilio client built on the first SMS, its roots), not a second TLS handshake.
    twilio = twilio_fake.TwilioFake()
    sms = twilio.settings()
    subjects = [
        ("hello_lambda (baseline)", RELEASE / "examples" / "hello_lambda", events / "verify-code.json", 200, {}),
        ("verify-code", RELEASE / "verify-code", events / "verify-code.json", 404, {}),
        ("send-code", RELEASE / "send-code", events / "send-code-email.json", 200, {}),
        ("send-code sms", RELEASE / "send-code", events / "send-code-sms.json", 200, sms),
        ("verify-code as deployed", RELEASE / "verify-code", events / "verify-code.json", 404, deployed),
        ("send-code as deployed", RELEASE / "send-code", events / "send-code-email.json", 200, deployed),
        # The same work in Python 3 + boto3, the HMAC key from Secrets Manager (bench/python_peer.py).
        ("python+boto3 verify peer", (sys.executable, ROOT / "bench" / "python_peer.py"),
         events / "verify-code.json", 404, deployed),
    ]
    # Before/after in one run: LAMBDA_BENCH_COMPARE="verify-code=/tmp/old-verify,send-code=/tmp/old-send"
    # adds those binaries, each with the events of its namesake's rows, as "<row> (compare)";
    # LAMBDA_BENCH_COMPARE_UNSET="OTP_A,OTP_B" leaves out settings the older build does not know
    # (it would refuse to start on an unknown OTP_ variable).
    unset = {name: None for name in os.environ.get("LAMBDA_BENCH_COMPARE_UNSET", "").split(",") if name}
    for entry in filter(None, os.environ.get("LAMBDA_BENCH_COMPARE", "").split(",")):
        name, path = entry.split("=", 1)
        for row, binary, event_file, expected, extra in list(subjects):
            if isinstance(binary, pathlib.Path) and binary.name == name:
                subjects.append((f"{row} (compare)", pathlib.Path(path), event_file, expected,
                                 {**extra, **unset}))
    # LAMBDA_BENCH_ROWS="verify-code as deployed,python": only the rows whose names contain one of
    # these (hello-world's is always run: the ratios need it).
    wanted = [w for w in os.environ.get("LAMBDA_BENCH_ROWS", "").split(",") if w]
    if wanted:
        subjects = [s for i, s in enumerate(subjects) if i == 0 or any(w in s[0] for w in wanted)]
    print(f"{'binary':32} {'MB':>5} {'size':>8} {'init':>9} {'first response':>15} {'CPU':>8} "
          f"{'x hello':>8} {'peak RSS':>9} {'fork':>7}")
    run = 0
    for memory in MEMORY_SIZES:
        share = CpuShare(memory)
        hello_cpu = None
        firsts_by_row = {}
        try:
            # Round by round, every row once per round: a host whose speed drifts during the run
            # slows every row alike, so rows compare fairly (above all a build and its compare).
            samples = {name: [] for name, *_ in subjects}
            events = {name: event_file.read_bytes() for name, _, event_file, _, _ in subjects}
            for _ in range(RUNS):
                for name, binary, _, expected, extra in subjects:
                    run += 1
                    # A fresh user and address per run, so send-code never meets its own cooldown
                    # or the per-address send limit.
                    body = events[name].replace(b"user-123", f"user-bench-{run}".encode())
                    body = body.replace(b"user@example.com", f"user-bench-{run}@example.com".encode())
                    body = body.replace(b"+14155552671", f"+1415555{run % 10000:04d}".encode())
                    run_env = dict(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory), **extra)
                    run_env = {k: v for k, v in run_env.items() if v is not None}
                    *sample, status = start_once(binary, body, run_env, share)
                    if status != expected:
                        raise RuntimeError(f"{name}: status {status}, expected {expected}")
                    samples[name].append(sample)
            for name, binary, *_ in subjects:
                inits, firsts, cpus, rsss, forks = zip(*samples[name])
                cpu = statistics.median(cpus)
                hello_cpu = hello_cpu or cpu
                first = statistics.median(firsts)
                firsts_by_row[name] = first
                size = f"{binary.stat().st_size / 1e6:6.2f}MB" if isinstance(binary, pathlib.Path) else "       -"
                print(f"{name:32} {memory:5} {size} "
                      f"{statistics.median(inits):7.1f}ms {first:13.1f}ms "
                      f"{cpu:6.1f}ms {cpu / hello_cpu:7.1f}x {max(rsss) / 1024:7.1f}MB "
                      f"{statistics.median(forks):5.1f}ms", flush=True)
            peer = firsts_by_row.get("python+boto3 verify peer")
            for row in ("verify-code as deployed", "verify-code as deployed (compare)"):
                if peer and row in firsts_by_row:
                    print(f"  {row}: first response {firsts_by_row[row] / peer:.3f}x the Python peer's "
                          f"at {memory} MB (goal <= 0.02x)")
        finally:
            share.remove()
    for front in fronts.values():
        front.close()
    twilio.close()
    print(f"(medians of {RUNS} starts; CPU quota = memory/1769 of a core in {PERIOD_US // 1000} ms "
          "periods; the first response includes one DynamoDB call over TLS to moto on this machine)")


if __name__ == "__main__":
    main()
