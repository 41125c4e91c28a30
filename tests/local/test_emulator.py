"""The emulator keeps TLS connections open between calls: a client pays one handshake per
pooled connection, not one per AWS call (what made a 100-model ``up`` a third handshakes).
A request whose client died before its body was sent is refused, not half applied."""

from __future__ import annotations

import json
import logging
import signal
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from modelops.local.server import Clients
from tests.helpers import Emulator


class _Connections(logging.Handler):
    """Counts the connections urllib3 opens: new ones, and reopened ones the server had closed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.opened = 0
        self.reopened = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Starting new HTTPS connection"):
            self.opened += 1
        elif message.startswith("Resetting dropped connection"):
            self.reopened += 1


@pytest.fixture
def connections() -> Iterator[_Connections]:
    logger = logging.getLogger("urllib3.connectionpool")
    handler, level = _Connections(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _client(emulator: Emulator, service: str):
    return boto3.client(service, endpoint_url=emulator.url, verify=emulator.ca_bundle, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(max_pool_connections=8, retries={"mode": "standard", "max_attempts": 1}))


def test_calls_reuse_their_tls_connections(emulator: Emulator, connections: _Connections) -> None:
    # GIVEN clients of three services, and 8 threads calling them at once
    s3, cloudwatch, sagemaker = (_client(emulator, s) for s in ("s3", "cloudwatch", "sagemaker"))
    s3.create_bucket(Bucket="reuse", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    def calls(i: int) -> None:
        # requests with bodies, responses with bodies, empty responses and errors
        s3.put_object(Bucket="reuse", Key=f"k{i}", Body=b"x" * 2048)
        s3.head_object(Bucket="reuse", Key=f"k{i}")
        cloudwatch.put_metric_alarm(AlarmName=f"a{i}", MetricName="m", Namespace="n", Statistic="Sum", Period=60,
                                    EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
        cloudwatch.describe_alarms(AlarmNames=[f"a{i}"])
        with pytest.raises(ClientError):
            sagemaker.describe_endpoint(EndpointName=f"missing-{i}")

    # WHEN 40 rounds of 5 calls run (200 calls)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(calls, range(40)))
    # THEN every call was answered over a connection the server kept open: at most one per
    # thread and service was ever opened, and none had to be reopened
    assert connections.reopened == 0
    assert connections.opened <= 3 * 8, connections.opened
    assert len(json.loads(json.dumps(cloudwatch.describe_alarms()["MetricAlarms"], default=str))) == 40


def _send(emulator: Emulator, request: bytes, *, read: bool) -> bytes:
    """``request`` over a TLS connection of its own; the answer when ``read``, else the
    connection is dropped at once, as by a client that dies."""
    host, port = emulator.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=emulator.ca_bundle)
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(request)
            while read and (chunk := tls.recv(4096)):
                answer += chunk
    return answer


def test_a_request_cut_short_by_a_dying_client_is_refused_not_half_applied(emulator: Emulator) -> None:
    cloudwatch = _client(emulator, "cloudwatch")
    body = ("Action=PutMetricAlarm&Version=2010-08-01&AlarmName=torn&MetricName=m&Namespace=n&Statistic=Sum"
            "&Period=60&EvaluationPeriods=1&Threshold=1.0&ComparisonOperator=GreaterThanThreshold").encode()
    head = (f"POST / HTTP/1.1\r\nHost: {emulator.url.removeprefix('https://')}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            "Authorization: AWS4-HMAC-SHA256 Credential=testing/20261124/eu-west-1/monitoring/aws4_request, "
            "SignedHeaders=host, Signature=x\r\n\r\n").encode()
    # GIVEN a PutMetricAlarm whose client dies after sending a third of its body
    _send(emulator, head + body[: len(body) // 3], read=False)
    # THEN nothing is created: the server does not hand the torn form on (moto made an alarm named None)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        assert cloudwatch.describe_alarms()["MetricAlarms"] == []
        time.sleep(0.1)
    # AND the same request sent whole is served
    answer = _send(emulator, head + body, read=True)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]] == ["torn"]


def test_the_emulator_builds_the_backends_modelops_calls_once_it_listens(tmp_path) -> None:
    """moto builds a backend on its first request, holding the lock every request needs
    (application-autoscaling: most of a second): the emulator builds them as it starts."""
    from modelops.local.emulator import BACKENDS, EmulatorServer, dispatcher_of

    server = EmulatorServer(ip_address="127.0.0.1", port=0, tls_dir=tmp_path / "tls")
    server.start()
    try:
        assert server._server is not None
        dispatcher = dispatcher_of(server._server.wsgi_app)
        deadline = time.monotonic() + 60
        while not set(BACKENDS) <= set(dispatcher.app_instances) and time.monotonic() < deadline:
            time.sleep(0.05)
        built = dict(dispatcher.app_instances)
        assert set(BACKENDS) <= set(built), f"not built without a request: {set(BACKENDS) - set(built)}"
        host, port = server.get_host_and_port()
        client = boto3.client("application-autoscaling", endpoint_url=f"https://{host}:{port}",
                              region_name="eu-west-1", verify=str(server.cert),
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        assert client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
        assert dispatcher.app_instances["applicationautoscaling"] is built["applicationautoscaling"]
    finally:
        server.stop()


def test_the_backends_built_at_start_cover_every_service_modelops_calls() -> None:
    import re
    from pathlib import Path

    import modelops
    from modelops.local.emulator import BACKENDS

    package = Path(modelops.__file__).parent
    services = {s for path in package.rglob("*.py") for s in re.findall(r'client\("([a-z0-9-]+)"\)', path.read_text())}
    assert "sagemaker" in services and "application-autoscaling" in services  # the scan finds them
    # moto names its backends as boto3 names the services, without the dashes
    assert {s.replace("-", "") for s in services} <= set(BACKENDS)


def test_clients_of_a_loopback_emulator_never_go_through_a_proxy(emulator: Emulator, monkeypatch) -> None:
    """A CI runner's HTTPS_PROXY must not carry emulator traffic (or its credentials) to a
    proxy: the clients `up`, the gates and drift use connect to the emulator directly."""
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    proxy.settimeout(0.5)
    url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    try:
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        clients = Clients(url=emulator.url, region="eu-west-1", verify=emulator.ca_bundle)
        assert clients.client("sts").get_caller_identity()["Account"]
        with pytest.raises(socket.timeout):
            proxy.accept()[0].close()  # nothing connected to the proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_emulator_in_the_foreground_stops_cleanly_on_sigterm_or_ctrl_c(tmp_path, stop_signal) -> None:
    """Run as `python -m modelops.local.emulator`, it exits 0 on either signal, after serving
    a call on a kept-alive connection (the state in which a handler raising into cheroot's
    loop could leave its stop waiting forever)."""
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "modelops.local.emulator", "--port", "0",
                             "--tls-dir", str(tmp_path / "tls"), "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        client = boto3.client("sqs", endpoint_url=info["url"], verify=info["ca_bundle"], region_name="eu-west-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        assert client.list_queues().get("QueueUrls", []) == []
        proc.send_signal(stop_signal)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
