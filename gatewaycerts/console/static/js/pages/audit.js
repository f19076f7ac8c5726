// The audit trail (/v3/{project}/traces): filterable, newest first, paged with the API's marker.
import * as api from "../api.js";
import { h, table, field, fmtTime } from "../dom.js";
import { errorBox } from "../ui.js";

const FILTERS = [
  ["resource_type", "Resource type", ["", "ssl_certificate", "private_ca", "private_certificate", "certificate_request", "order", "secret", "container"]],
  ["trace_name", "Action (e.g. apic.certificate.create)"],
  ["user", "User"],
  ["resource_id", "Resource id"],
];

export async function auditPage(root) {
  root.append(h("h1", {}, "Audit trail"));
  if (!api.can.admin()) {
    root.append(h("p", { class: "empty" }, "Only admins of the project may read its audit trail."));
    return;
  }
  const inputs = {};
  const form = h(
    "form",
    { class: "filters", id: "audit-filters", role: "search" },
    FILTERS.map(([key, label, options]) => {
      const input = options ? h("select", { name: key }, options.map((o) => h("option", { value: o }, o || "any"))) : h("input", { name: key, autocomplete: "off" });
      inputs[key] = input;
      return field(label, input).row;
    }),
    h("button", { type: "submit" }, "Filter"),
  );
  const list = h("div", { id: "audit-list" });
  const more = h("div");
  root.append(form, list, more);
  let rows = [];
  async function load(marker) {
    const params = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value.trim()]));
    try {
      const { data } = await api.call("GET", `/v3/${api.p()}/traces${api.query({ ...params, limit: 50, next: marker })}`);
      rows = marker ? rows.concat(data.traces) : data.traces;
      list.replaceChildren(
        table(
          `Events, newest first (${rows.length}${data.meta_data.marker ? "+" : ""})`,
          [
            ["time", (t) => fmtTime(t.time)],
            ["action", (t) => t.trace_name],
            ["resource", (t) => `${t.resource_type} ${t.resource_name ?? ""} ${t.resource_id ?? ""}`],
            ["by", (t) => `${t.user?.name ?? ""} (${(t.user?.roles ?? []).join(", ")})`],
            ["through", (t) => t.service_type],
            ["details", (t) => Object.entries(t.details ?? {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : v}`).join("; ")],
          ],
          rows,
          "No event matches.",
        ),
      );
      more.replaceChildren(data.meta_data.marker ? h("button", { type: "button", onclick: () => load(data.meta_data.marker) }, "Older events") : "");
    } catch (err) {
      list.replaceChildren(errorBox(err));
    }
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  await load();
}
