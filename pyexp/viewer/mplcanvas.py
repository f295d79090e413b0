"""An interactive matplotlib figure in a Panel page that works offline.

Panel's ``Matplotlib(interactive=True)`` goes through ipywidgets_bokeh + ipympl, whose widget
JavaScript is fetched from a CDN (unpkg) at page load, so it breaks without internet. Instead the
figure is driven by matplotlib's own web backend core (``FigureCanvasWebAggCore``, the server half
of ``webagg``/``nbagg``: it turns browser mouse events into matplotlib events, so the navigation
toolbar's pan/zoom and 3-D rotation work exactly as in a desktop window and render PNG frames).
The browser half is the small ES module below, carried over Panel's own websocket with
``JSComponent`` messages: no extra route, no extra port, nothing fetched from elsewhere.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

from panel.custom import JSComponent

_NUMBERS = itertools.count(1)

_ESM = r"""
const BUTTONS = [["home", "Home", "Reset original view"], ["back", "\u2190", "Back"],
                 ["forward", "\u2192", "Forward"], ["pan", "Pan", "Pan (left drag) / zoom (right drag)"],
                 ["zoom", "Zoom", "Zoom to rectangle"]];

export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "pyexp-mpl";
  const bar = document.createElement("div");
  bar.className = "pyexp-mpl-bar";
  const buttons = {};
  for (const [name, label, tip] of BUTTONS) {
    const b = document.createElement("button");
    b.textContent = label; b.title = tip; b.dataset.name = name;
    b.addEventListener("click", () => model.send_msg({ type: "toolbar_button", name }));
    bar.appendChild(b); buttons[name] = b;
  }
  const status = document.createElement("span");
  status.className = "pyexp-mpl-status";
  bar.appendChild(status);
  const holder = document.createElement("div");
  holder.style.position = "relative";
  const image = document.createElement("canvas");
  image.className = "pyexp-mpl-canvas";
  const overlay = document.createElement("canvas");
  overlay.style.position = "absolute"; overlay.style.left = "0"; overlay.style.top = "0";
  overlay.tabIndex = 0;
  holder.append(image, overlay);
  root.append(bar, holder);
  el.appendChild(root);

  const ratio = window.devicePixelRatio || 1;
  let mode = "full";
  const ctx = image.getContext("2d");
  const octx = overlay.getContext("2d");

  function setSize(w, h) {
    for (const c of [image, overlay]) {
      c.width = Math.round(w * ratio); c.height = Math.round(h * ratio);
      c.style.width = w + "px"; c.style.height = h + "px";
    }
    holder.style.width = w + "px"; holder.style.height = h + "px";
  }

  function mods(e) {
    const m = [];
    if (e.ctrlKey) m.push("ctrl");
    if (e.altKey) m.push("alt");
    if (e.shiftKey) m.push("shift");
    if (e.metaKey) m.push("meta");
    return m;
  }

  function mouse(type) {
    return (e) => {
      const r = overlay.getBoundingClientRect();
      const msg = { type, x: (e.clientX - r.left) * ratio, y: (e.clientY - r.top) * ratio,
                    button: e.button || 0, buttons: e.buttons || 0, modifiers: mods(e) };
      if (type === "scroll") msg.step = e.deltaY < 0 ? 1 : -1;
      if (type === "button_press") overlay.focus();
      model.send_msg(msg);
      if (type !== "motion_notify") e.preventDefault();
    };
  }
  overlay.addEventListener("mousedown", mouse("button_press"));
  overlay.addEventListener("mouseup", mouse("button_release"));
  overlay.addEventListener("dblclick", mouse("dblclick"));
  overlay.addEventListener("mousemove", mouse("motion_notify"));
  overlay.addEventListener("mouseenter", mouse("figure_enter"));
  overlay.addEventListener("mouseleave", mouse("figure_leave"));
  overlay.addEventListener("wheel", mouse("scroll"), { passive: false });
  overlay.addEventListener("contextmenu", (e) => e.preventDefault());

  model.on("msg:custom", (msg) => {
    if (msg.png !== undefined) {
      const img = new Image();
      img.onload = () => {
        if (mode === "full") ctx.clearRect(0, 0, image.width, image.height);
        ctx.drawImage(img, 0, 0);
        root.dataset.frames = String(Number(root.dataset.frames || 0) + 1);
        model.send_msg({ type: "ack" });
      };
      img.src = "data:image/png;base64," + msg.png;
      return;
    }
    const ev = msg.json || {};
    switch (ev.type) {
      case "resize":
        ready = true;
        setSize(ev.size[0], ev.size[1]); model.send_msg({ type: "refresh" }); break;
      case "draw": model.send_msg({ type: "draw" }); break;
      case "image_mode": mode = ev.mode; break;
      case "cursor": overlay.style.cursor = ev.cursor; break;
      case "message": status.textContent = ev.message; break;
      case "navigate_mode":
        for (const n of ["pan", "zoom"]) buttons[n].classList.toggle("active", ev.mode === n.toUpperCase());
        break;
      case "history_buttons":
        buttons.back.disabled = !ev.Back; buttons.forward.disabled = !ev.Forward; break;
      case "rubberband": {
        octx.clearRect(0, 0, overlay.width, overlay.height);
        if (ev.x0 >= 0) {
          const y0 = image.height - ev.y0, y1 = image.height - ev.y1;
          octx.strokeStyle = "#000"; octx.lineWidth = ratio;
          octx.strokeRect(Math.min(ev.x0, ev.x1), Math.min(y0, y1),
                          Math.abs(ev.x1 - ev.x0), Math.abs(y1 - y0));
        }
        break;
      }
      default: break;
    }
  });
  // A view created after page load can miss its first message; say hello until answered.
  let ready = false, tries = 0;
  const hello = () => {
    if (ready || ++tries > 40) { clearInterval(timer); return; }
    model.send_msg({ type: "init", device_pixel_ratio: ratio });
  };
  const timer = setInterval(hello, 500);
  hello();
}
"""

_CSS = """
.pyexp-mpl-bar { display: flex; gap: 4px; align-items: center; margin-bottom: 4px; }
.pyexp-mpl-bar button { font: 12px sans-serif; padding: 2px 8px; border: 1px solid #bbb;
  background: #f6f6f6; border-radius: 3px; cursor: pointer; }
.pyexp-mpl-bar button.active { background: #cde; border-color: #68a; }
.pyexp-mpl-status { font: 11px monospace; color: #555; margin-left: 8px; white-space: nowrap; }
"""


class MplFigure(JSComponent):
    """A live matplotlib figure: the browser sends mouse events, the server sends frames."""

    _esm = _ESM
    _stylesheets = [_CSS]

    def __init__(self, figure: Any, **params: Any) -> None:
        from matplotlib.backends.backend_webagg_core import (
            FigureCanvasWebAggCore,
            FigureManagerWebAgg,
        )

        w, h = (figure.get_size_inches() * figure.dpi).astype(int)
        params.setdefault("width", int(w) + 4)
        params.setdefault("height", int(h) + 34)
        super().__init__(**params)
        canvas = FigureCanvasWebAggCore(figure)
        self._figure = figure
        self._manager = FigureManagerWebAgg(canvas, next(_NUMBERS))
        self._manager.web_sockets.add(self)

    # The manager treats this object as one of its websockets.
    def send_json(self, payload: dict[str, Any]) -> None:
        self._send_msg({"json": payload})

    def send_binary(self, data: bytes) -> None:
        self._send_msg({"png": base64.b64encode(data).decode("ascii")})

    def _handle_msg(self, msg: Any) -> None:
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return
        canvas = self._manager.canvas
        if msg["type"] == "init":
            canvas._set_device_pixel_ratio(float(msg.get("device_pixel_ratio") or 1))
            self._manager.resize(*canvas.get_width_height(physical=True))
            return
        if msg["type"] == "refresh":
            canvas._force_full = True
        try:
            self._manager.handle_json(msg)
        except Exception:  # noqa: BLE001 - a bad event from the browser must not end the session
            pass
