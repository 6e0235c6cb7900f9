"""What the core renders for others: SIEM messages (syslog, CEF), PAC files, Prometheus
metrics and health, and the block and warning pages.
"""

from ._metrics import METRICS_CONTENT_TYPE, Health, Metrics, health
from ._pac import PAC_MODES, Network, check_proxy_address, pac_file
from ._pages import block_page, json_error, wants_html, warn_page
from ._siem import (
    SYSLOG_FORMATS,
    SinkConfigError,
    format_message,
    frame,
    parse_syslog_url,
    to_cef,
    to_rfc5424,
    webhook_batch,
)

__all__ = [
    "Health",
    "METRICS_CONTENT_TYPE",
    "Metrics",
    "Network",
    "PAC_MODES",
    "SYSLOG_FORMATS",
    "SinkConfigError",
    "block_page",
    "check_proxy_address",
    "format_message",
    "frame",
    "health",
    "json_error",
    "pac_file",
    "parse_syslog_url",
    "to_cef",
    "to_rfc5424",
    "wants_html",
    "warn_page",
    "webhook_batch",
]
