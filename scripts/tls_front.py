"""A TLS front for a local plain-HTTP peer (moto), so that a function's AWS calls go over real
TLS, as on Lambda (`make bench` measures the handshake, `make test` checks it works). It makes its
own root CA, an intermediate and a certificate for 127.0.0.1/localhost, in the shape of AWS's
endpoint certificates, and two sets of roots with that root added: the system's bundle (the
functions with OTP_AWS_TRUST_ROOTS=system, and the Python peer) and Amazon Trust Services' five
roots (what the functions trust by default; the same size and parse cost as on Lambda)."""
import datetime
import ipaddress
import pathlib
import re
import socket
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SYSTEM_BUNDLES = ["/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"]
# The functions' built-in roots (shared/src/tls.rs).
AMAZON_ROOTS = pathlib.Path(__file__).resolve().parent.parent / "shared" / "certs" / "amazon-trust-services.pem"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, ca, names=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory):
    """Writes ca.pem, server.pem (the server's certificate, then the intermediate's), server.key,
    bundle.pem (system roots + ca) and amazon-roots.pem (Amazon's five roots + ca, for
    OTP_AWS_TRUST_ROOTS) to `directory`; returns bundle.pem's path. The chain has the shape AWS's regional
    endpoints present (e.g. DynamoDB's and Secrets Manager's): RSA 2048 throughout, a root in the
    trust store, an intermediate sent by the server, then the server's own certificate. So a
    client checks what it checks there: two certificate signatures and the handshake's RSA-PSS
    signature."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, intermediate_key, key = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                                     for _ in range(3))
    ca = _certificate("otp test root CA", ca_key, "otp test root CA", ca_key, ca=True)
    intermediate = _certificate("otp test RSA 2048 M01", intermediate_key, "otp test root CA",
                                ca_key, ca=True)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = _certificate("localhost", key, "otp test RSA 2048 M01", intermediate_key, ca=False,
                          names=names)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(server.public_bytes(pem) + intermediate.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    system = next((pathlib.Path(p) for p in SYSTEM_BUNDLES if pathlib.Path(p).is_file()), None)
    if system is None:
        raise SystemExit("tls_front: no system CA bundle found (install ca-certificates)")
    (directory / "bundle.pem").write_bytes(system.read_bytes() + ca.public_bytes(pem))
    (directory / "amazon-roots.pem").write_bytes(AMAZON_ROOTS.read_bytes() + ca.public_bytes(pem))
    return directory / "bundle.pem"


def _pump(source, sink, seen=None):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if seen is not None:
                seen(data)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TlsFront:
    """Accepts TLS on a free loopback port and forwards the plain bytes to `target_port`.
    `connections` holds, per TLS connection accepted, the AWS operations sent over it (each
    request's `X-Amz-Target`, or its method and path when it has none), so tests can count both."""

    def __init__(self, directory, target_port):
        self.target_port = target_port
        self.connections = []
        self._lock = threading.Lock()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pathlib.Path(directory) / "server.pem", pathlib.Path(directory) / "server.key")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client):
        try:
            # No Nagle on either side: moto writes an answer's head and body apart, and each
            # becomes its own TLS record here; with Nagle the second waited for the client's
            # delayed ACK, ~10 ms added to every request, which no AWS endpoint adds (measured:
            # a GetItem through the front took 12 ms, against 1.5 ms straight to moto; 1.8 ms now).
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            client.close()
            return
        with self._lock:
            operations = []
            self.connections.append(operations)
        threading.Thread(target=_pump, args=(tls, upstream, lambda data: self._note(operations, data)),
                         daemon=True).start()
        _pump(upstream, tls)

    def _note(self, operations, data):
        """Records the requests whose head is in `data` (the SDK writes a head in one piece)."""
        for head in re.finditer(rb"(?m)^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.1\r\n((?:[^\r\n]+\r\n)*)\r\n", data):
            target = re.search(rb"(?mi)^x-amz-target: *(\S+)", head.group(3))
            name = target.group(1) if target else head.group(1) + b" " + head.group(2)
            with self._lock:
                operations.append(name.decode("ascii", "replace"))

    def operations(self):
        """Every operation seen, in order, across connections."""
        with self._lock:
            return [op for connection in self.connections for op in connection]

    def close(self):
        self.listener.close()
