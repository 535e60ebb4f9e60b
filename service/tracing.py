"""OpenTelemetry tracing, off unless C360_TRACING names an exporter.

`console` prints each span as JSON on stdout (a demo, a look at one request); `otlp` batches
them to a collector over OTLP/HTTP, configured by the exporter's own standard variables
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, ...). The provider is the app's own,
never the process-wide global, so that two apps in one process (the tests) keep their spans
apart. api.operation_log makes a span per GraphQL operation, store.statements one per SQL
statement beneath it.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from service.settings import Settings

SERVICE_NAME = "customer-360"


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """The provider `settings.tracing` asks for; None when tracing is off."""
    if settings.tracing == "off":
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if settings.tracing == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


__all__ = ["SERVICE_NAME", "tracer_provider"]
