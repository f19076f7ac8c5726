// Private CAs (CCM): the hierarchy, create, one CA's detail with disable/enable, revoke, its CRL and entries,
// issuing a certificate and revoking the ones it issued.
import * as api from "../api.js";
import { h, table, facts, field, button, fmtTime } from "../dom.js";
import { crlEntries } from "../der.js";
import { act, errorBox, statusBadge } from "../ui.js";

const CAS = "/v1/private-certificate-authorities";
const CERTS = "/v1/private-certificates";

async function listCas() {
  const { data } = await api.call("GET", `${CAS}${api.query({ limit: 1000, sort_key: "create_time", sort_dir: "ASC" })}`);
  return data.certificate_authorities;
}

function tree(cas) {
  const ids = new Set(cas.map((c) => c.ca_id));
  const children = new Map();
  for (const ca of cas) {
    const parent = ca.issuer_id && ids.has(ca.issuer_id) ? ca.issuer_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(ca);
  }
  const branch = (parent) =>
    h(
      "ul",
      { class: parent ? "" : "tree" },
      (children.get(parent) ?? []).map((ca) =>
        h(
          "li",
          {},
          h("a", { href: `#/cas/${encodeURIComponent(ca.ca_id)}` }, ca.distinguished_name.common_name),
          " ",
          statusBadge(ca.status),
          h("span", { class: "muted" }, ` ${ca.type} · ${ca.key_algorithm} · until ${fmtTime(ca.not_after)}`),
          children.has(ca.ca_id) ? branch(ca.ca_id) : null,
        ),
      ),
    );
  return cas.length ? h("nav", { "aria-label": "CA hierarchy", id: "ca-tree" }, branch(null)) : h("p", { class: "empty" }, "No private CA yet.");
}

function createForm(cas) {
  const type = field("Type", h("select", {}, h("option", { value: "ROOT" }, "root"), h("option", { value: "SUBORDINATE" }, "subordinate")));
  const cn = field("Common name", h("input", { autocomplete: "off" }));
  const org = field("Organization (optional)", h("input", { autocomplete: "off" }));
  const key = field("Key algorithm", h("select", {}, ["EC256", "EC384", "RSA2048", "RSA4096"].map((k) => h("option", { value: k }, k))));
  const years = field("Validity (years)", h("input", { type: "number", min: 1, max: 30, value: 10 }));
  const issuer = field("Issuing CA (subordinate)", h("select", {}, cas.filter((c) => c.status === "ACTIVED").map((c) => h("option", { value: c.ca_id }, c.distinguished_name.common_name))));
  const crl = h("input", { type: "checkbox", checked: true, id: "crl-enabled" });
  const error = h("div", { class: "form-error" });
  const form = h(
    "form",
    { class: "card", id: "ca-form" },
    h("h2", {}, "Create a CA"),
    type.row,
    cn.row,
    org.row,
    key.row,
    years.row,
    issuer.row,
    h("div", { class: "field" }, crl, h("label", { for: "crl-enabled" }, " publish a CRL")),
    error,
    h("button", { type: "submit" }, "Create"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = {
      type: type.input.value,
      distinguished_name: { common_name: cn.input.value },
      key_algorithm: key.input.value,
      validity: { type: "YEAR", value: Number(years.input.value) },
      crl_configuration: { enabled: crl.checked },
    };
    if (org.input.value) body.distinguished_name.organization = org.input.value;
    if (body.type === "SUBORDINATE") body.issuer_id = issuer.input.value;
    act(error, () => api.call("POST", CAS, body), (r) => (location.hash = `#/cas/${encodeURIComponent(r.data.ca_id)}`));
  });
  return form;
}

export async function authoritiesPage(root) {
  root.append(h("h1", {}, "Private CAs"));
  const cas = await listCas();
  root.append(h("h2", {}, "Hierarchy"), tree(cas));
  if (api.can.admin()) root.append(createForm(cas));
}

function issueForm(ca, reload) {
  const cn = field("Common name", h("input", { autocomplete: "off" }));
  const sans = field("DNS names (comma-separated)", h("input", { autocomplete: "off" }));
  const days = field("Validity (days)", h("input", { type: "number", min: 1, value: 90 }));
  const error = h("div", { class: "form-error" });
  const form = h("form", { class: "card", id: "issue-form" }, h("h2", {}, "Issue a certificate"), cn.row, sans.row, days.row, error, h("button", { type: "submit" }, "Issue"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { issuer_id: ca.ca_id, distinguished_name: { common_name: cn.input.value }, validity: { type: "DAY", value: Number(days.input.value) } };
    const names = sans.input.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (names.length) body.subject_alternative_names = names.map((value) => ({ type: "DNS", value }));
    act(error, () => api.call("POST", CERTS, body), reload);
  });
  return form;
}

async function crlSection(ca) {
  const box = h("section", { id: "crl", "aria-labelledby": "h-crl" }, h("h2", { id: "h-crl" }, "CRL"));
  if (!ca.crl_configuration.enabled) {
    box.append(h("p", {}, "This CA does not publish a CRL."));
    if (api.can.admin()) {
      const error = h("div", { class: "form-error" });
      box.append(button("Publish a CRL", () => act(error, () => api.call("POST", `${CAS}/${encodeURIComponent(ca.ca_id)}/crl/enable`, {}), () => window.dispatchEvent(new HashChangeEvent("hashchange")))), error);
    }
    return box;
  }
  const url = `${CAS}/${encodeURIComponent(ca.ca_id)}/crl`;
  try {
    const response = await api.call("GET", url, undefined, { raw: true, headers: { Accept: "application/pkix-crl" } });
    const crl = crlEntries(new Uint8Array(await response.arrayBuffer()));
    box.append(
      facts([
        ["Distribution point", h("a", { href: url }, ca.crl_configuration.crl_dis_point ?? url)],
        ["This update", fmtTime(crl.thisUpdate.getTime())],
        ["Next update", crl.nextUpdate ? fmtTime(crl.nextUpdate.getTime()) : "none"],
      ]),
      table("Revoked serial numbers", [["serial (decimal)", (e) => h("code", { class: "serial" }, e.serial)], ["revoked", (e) => fmtTime(e.date.getTime())]], crl.entries, "No certificate is revoked."),
    );
  } catch (err) {
    box.append(errorBox(err));
  }
  return box;
}

export async function authorityPage(root, id) {
  const path = `${CAS}/${encodeURIComponent(id)}`;
  const [{ data: ca }, cas] = await Promise.all([api.call("GET", path), listCas()]);
  const parent = cas.find((c) => c.ca_id === ca.issuer_id);
  const children = cas.filter((c) => c.issuer_id === ca.ca_id);
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  root.append(
    h("p", {}, h("a", { href: "#/cas" }, "← Private CAs")),
    h("h1", {}, "CA ", h("span", { id: "ca-name" }, ca.distinguished_name.common_name), " ", statusBadge(ca.status)),
    facts([
      ["Type", ca.type],
      ["Issuer", parent ? h("a", { href: `#/cas/${encodeURIComponent(parent.ca_id)}` }, parent.distinguished_name.common_name) : ca.issuer_name ?? "self-signed"],
      ["Subordinates", children.length ? children.map((c, i) => [i ? ", " : "", h("a", { href: `#/cas/${encodeURIComponent(c.ca_id)}` }, c.distinguished_name.common_name)]) : "none"],
      ["Key / signature", `${ca.key_algorithm} / ${ca.signature_algorithm}`],
      ["Path length", ca.path_length ?? "unlimited"],
      ["Serial", ca.serial_number ?? ""],
      ["Valid", `${fmtTime(ca.not_before)} → ${fmtTime(ca.not_after)}`],
      ["Id", ca.ca_id],
    ]),
  );
  if (api.can.admin()) {
    const error = h("div", { class: "form-error", id: "ca-action-error" });
    const actions = h("div", { class: "actions", id: "ca-actions" });
    if (ca.status === "ACTIVED") actions.append(button("Disable", () => act(error, () => api.call("POST", `${path}/disable`), reload)));
    if (ca.status === "DISABLED") actions.append(button("Enable", () => act(error, () => api.call("POST", `${path}/enable`), reload)));
    if (ca.type === "SUBORDINATE" && ca.status !== "REVOKED") actions.append(button("Revoke this CA", () => act(error, () => api.call("POST", `${path}/revoke`, {}), reload), { class: "danger" }));
    root.append(actions, error);
  }
  root.append(await crlSection(ca));

  const { data } = await api.call("GET", `${CERTS}${api.query({ limit: 1000, sort_key: "create_time", sort_dir: "DESC" })}`);
  const issued = data.certificates.filter((c) => c.issuer_id === ca.ca_id);
  const error = h("div", { class: "form-error", id: "issued-error" });
  root.append(
    h(
      "section",
      { id: "issued", "aria-labelledby": "h-issued" },
      h("h2", { id: "h-issued" }, "Issued certificates"),
      error,
      table(
        "Certificates issued by this CA",
        [
          ["common name", (c) => c.distinguished_name.common_name],
          ["serial (decimal)", (c) => h("code", { class: "serial" }, c.serial_number)],
          ["status", (c) => statusBadge(c.status)],
          ["expires", (c) => fmtTime(c.not_after)],
          ...(api.can.write()
            ? [["", (c) => (c.status === "ISSUED" ? button(`Revoke ${c.distinguished_name.common_name}`, () => act(error, () => api.call("POST", `${CERTS}/${encodeURIComponent(c.certificate_id)}/revoke`, {}), reload), { class: "danger" }) : "")]]
            : []),
        ],
        issued,
        "None issued yet.",
      ),
    ),
  );
  if (api.can.write() && ca.status === "ACTIVED") root.append(issueForm(ca, reload));
}
