"""A small builder for self-contained HTML reports: one file, no external assets, opens offline."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from psychofeat.io import to_json, write_text  # noqa: E402

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1150px;
       color: #1b1b1b; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #444; }
.gallery { display: flex; flex-wrap: wrap; gap: .8em; }
.gallery figure { margin: 0; }
.note { background: #f7f7e8; border-left: 4px solid #c9c36a; padding: .5em .8em; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; font-size: .8em; }
"""


def _figure_html(uri: str, caption: str, width: int | None = None, pixelated: bool = True) -> str:
    """An image with its caption; images shown pixel for pixel (no smoothing when enlarged) unless plots."""
    w = f' width="{width}"' if width else ""
    style = ' style="image-rendering: pixelated"' if pixelated else ""
    return (f'<figure><img src="{uri}"{w}{style} alt="{html.escape(caption)}"/>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def fig_to_data_uri(fig: Any, dpi: int = 110) -> str:
    """Render a matplotlib figure to a base64 PNG data URI and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def array_to_data_uri(img: np.ndarray) -> str:
    """An H×W×3 (or H×W) image as a PNG data URI, without resampling: uint8 as is, floats in [0, 1]."""
    from PIL import Image

    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        arr8 = arr
    elif np.issubdtype(arr.dtype, np.floating):
        arr8 = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise TypeError(f"images must be uint8 or float in [0, 1], got {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr8).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class HtmlReport:
    """Accumulate sections, figures and tables; `write()` produces one self-contained HTML file."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css_class: str | None = None) -> None:
        cls = f' class="{css_class}"' if css_class else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def html(self, raw: str) -> None:
        """Append trusted HTML produced by psychofeat itself."""
        self._parts.append(raw)

    def figure(self, fig: Any, caption: str = "", dpi: int = 110) -> None:
        self._parts.append(_figure_html(fig_to_data_uri(fig, dpi=dpi), caption, pixelated=False))

    def image(self, img: np.ndarray, caption: str = "", width: int | None = None) -> None:
        self._parts.append(_figure_html(array_to_data_uri(img), caption, width))

    def gallery(self, images: list[tuple[np.ndarray, str]], width: int | None = None) -> None:
        """Several small images side by side (e.g. example stimuli or SR crops)."""
        items = "".join(_figure_html(array_to_data_uri(img), cap, width) for img, cap in images)
        self._parts.append(f'<div class="gallery">{items}</div>')

    def table(self, df: pd.DataFrame, caption: str = "", float_format: str = "{:.4g}", max_rows: int = 200) -> None:
        shown = df.head(max_rows)
        rows = ["<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns) + "</tr>"]
        for _, r in shown.iterrows():
            cells = []
            for v in r.to_numpy():
                if isinstance(v, (float, np.floating)):
                    s = "" if not np.isfinite(v) else float_format.format(v)
                else:
                    s = str(v)
                cells.append(f"<td>{html.escape(s)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        more = f"<p>({len(df) - max_rows} more rows in the CSV)</p>" if len(df) > max_rows else ""
        self._parts.append(f"<table>{cap}{''.join(rows)}</table>{more}")

    def provenance(self, info: dict[str, Any]) -> None:
        self.heading("Provenance")
        self._parts.append(f"<pre>{html.escape(to_json(info))}</pre>")

    def render(self) -> str:
        body = "\n".join(self._parts)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        return write_text(path, self.render())
