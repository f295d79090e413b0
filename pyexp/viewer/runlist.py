"""The sidebar's run list: configs grouped under their run (timestamp folder), names in full.

A small ES module over Panel's own websocket (nothing fetched from elsewhere). Each group is a
collapsible header with a checkbox that (de)selects its configs; each config is a checkbox with
its folder name; a name cut by the sidebar's width shows in full on hover.
"""

from __future__ import annotations

from typing import Any

import param
from panel.custom import JSComponent

_ESM = r"""
export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "pyexp-runlist";
  el.appendChild(root);
  const collapsed = new Set();
  let boxes = new Map();

  function selected() { return new Set(model.value || []); }

  function setValue(names) {
    const order = (model.items || []).map((i) => i.name);
    const keep = new Set(names);
    model.value = order.filter((n) => keep.has(n));
  }

  function build() {
    root.replaceChildren();
    boxes = new Map();
    const groups = new Map();
    for (const item of model.items || []) {
      if (!groups.has(item.group)) groups.set(item.group, []);
      groups.get(item.group).push(item);
    }
    for (const [group, items] of groups) {
      const section = document.createElement("div");
      section.className = "pyexp-run-group";
      section.dataset.group = group;
      const head = document.createElement("div");
      head.className = "pyexp-run-group-head";
      const arrow = document.createElement("span");
      arrow.className = "pyexp-run-arrow";
      const all = document.createElement("input");
      all.type = "checkbox";
      all.className = "pyexp-run-group-check";
      all.title = "select or clear every config of this run";
      const label = document.createElement("span");
      label.className = "pyexp-run-group-name";
      label.textContent = `${group || "(top level)"} (${items.length})`;
      label.title = group;
      head.append(arrow, all, label);
      const body = document.createElement("div");
      body.className = "pyexp-run-group-body";
      const fold = () => {
        const shut = collapsed.has(group);
        body.style.display = shut ? "none" : "";
        arrow.textContent = shut ? "\u25b8" : "\u25be";
      };
      arrow.addEventListener("click", () => {
        collapsed.has(group) ? collapsed.delete(group) : collapsed.add(group); fold();
      });
      label.addEventListener("click", () => arrow.click());
      all.addEventListener("change", () => {
        const now = selected();
        for (const i of items) all.checked ? now.add(i.name) : now.delete(i.name);
        setValue(now);
      });
      for (const item of items) {
        const row = document.createElement("label");
        row.className = "pyexp-run";
        row.title = item.name;
        row.dataset.run = item.name;
        const box = document.createElement("input");
        box.type = "checkbox";
        box.addEventListener("change", () => {
          const now = selected();
          box.checked ? now.add(item.name) : now.delete(item.name);
          setValue(now);
        });
        const name = document.createElement("span");
        name.className = "pyexp-run-name";
        name.textContent = item.label;
        row.append(box, name);
        body.appendChild(row);
        boxes.set(item.name, box);
      }
      section.append(head, body);
      section._all = all; section._items = items;
      root.appendChild(section);
      fold();
    }
    check();
  }

  function check() {
    const now = selected();
    for (const [name, box] of boxes) box.checked = now.has(name);
    for (const section of root.children) {
      const n = section._items.filter((i) => now.has(i.name)).length;
      section._all.checked = n > 0 && n === section._items.length;
      section._all.indeterminate = n > 0 && n < section._items.length;
    }
  }

  model.on("items", build);
  model.on("value", check);
  build();
}
"""

_CSS = """
.pyexp-runlist { max-height: 340px; overflow-y: auto; border: 1px solid #ddd; border-radius: 4px;
  font: 12px sans-serif; background: white; }
.pyexp-run-group-head { display: flex; align-items: center; gap: 4px; padding: 3px 4px;
  background: #f3f3f3; position: sticky; top: 0; cursor: pointer; font-weight: 600; }
.pyexp-run-arrow { width: 10px; color: #666; }
.pyexp-run-group-name, .pyexp-run-name { overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; min-width: 0; }
.pyexp-run { display: flex; align-items: center; gap: 4px; padding: 1px 4px 1px 18px;
  cursor: pointer; }
.pyexp-run:hover { background: #eef4fb; }
.pyexp-run input, .pyexp-run-group-head input { margin: 0; flex: none; }
"""


class RunList(JSComponent):
    """Runs grouped by their timestamp folder, each with a checkbox; ``value`` is the selection.

    ``items`` holds one ``{"name", "group", "label"}`` dict per run, in display order.
    """

    items = param.List(default=[], doc="Runs as {name, group, label} dicts, in display order.")
    value = param.List(default=[], doc="Names of the selected runs.")

    _esm = _ESM
    _stylesheets = [_CSS]

    @property
    def options(self) -> list[str]:
        """Names of the listed runs, in display order."""
        return [item["name"] for item in self.items]


def run_items(runs: list[str]) -> list[dict[str, Any]]:
    """``RunList`` items: each run under the folder that holds it (its run's timestamp).

    The newest run comes first (what a page selects by default); configs keep their order.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in runs:
        group, _, label = name.rpartition("/")
        groups.setdefault(group, []).append({"name": name, "group": group, "label": label})
    order = sorted(groups, key=lambda g: (g.rpartition("/")[2], g), reverse=True)
    return [item for group in order for item in groups[group]]
