"""An OTLP trace receiver on loopback, over HTTP (protobuf) or gRPC, for the tracing tests.

It decodes each `ExportTraceServiceRequest` with the opentelemetry-proto package and keeps
the spans as plain `ReceivedSpan`s, and the raw request bodies (to search them for text that
must not be there).
"""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    kind: int  # SpanKind of the proto: 2 SERVER, 3 CLIENT, 1 INTERNAL
    status: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


class OTLPReceiver:
    """`OTLPReceiver("http")` or `("grpc")`; `endpoint` is what the gateway is given."""

    def __init__(self, protocol: Literal["http", "grpc"] = "http") -> None:
        self.protocol = protocol
        self.spans: list[ReceivedSpan] = []
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None
        self.port = 0

    def keep(self, raw: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(raw)
        spans = []
        for rs in request.resource_spans:
            resource = _attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(ReceivedSpan(
                        name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                        status=s.status.code, attributes=_attributes(s.attributes),
                        resource=resource,
                        events=[{"name": e.name, **_attributes(e.attributes)}
                                for e in s.events]))
        with self._lock:
            self.bodies.append(raw)
            self.spans.extend(spans)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OTLPReceiver:
        if self.protocol == "http":
            self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            self.port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        else:
            import grpc  # type: ignore[import-untyped]

            self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            add = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
            add(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
            self.port = self._grpc.add_insecure_port("127.0.0.1:0")
            self._grpc.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=None)

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the proto's name
        self.receiver.paths.append("grpc")
        self.receiver.keep(request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


def _handler(receiver: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("content-encoding") == "gzip":
                raw = gzip.decompress(raw)
            receiver.paths.append(self.path)
            receiver.keep(raw)
            body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
