"""Self-contained HTML reports (figures embedded as PNG data URIs) and shared plotting helpers."""

from psychofeat.report.html import HtmlReport, fig_to_data_uri

__all__ = ["HtmlReport", "fig_to_data_uri"]
