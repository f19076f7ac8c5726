// Certificates (APIC): the list with the dialect's filters and paging, upload, and one certificate's detail
// (subject, SANs, issuer, validity, serial, fingerprint, chain, bound domains, history; update, bind, unbind,
// delete). Private keys are sent on upload and never read back: the API has no way to return them.
import * as api from "../api.js";
import { h, table, facts, field, button, fmtTime, daysLeft } from "../dom.js";
import { act, errorBox, pager } from "../ui.js";

const FILTERS = [
  ["name", "Name contains"],
  ["common_name", "Common name"],
  ["type", "Type"],
  ["instance_id", "Instance id"],
  ["algorithm_type", "Key algorithm"],
  ["signature_algorithm", "Signature algorithm"],
];
const LIMIT = 20;
let filters = {};
let offset = 0;

// Which form field an APIG error concerns (the service's message names it; the code narrows it).
function fieldOf(err) {
  const byCode = { "APIG.2101": "private_key", "APIG.2105": "private_key", "APIG.2102": "cert_content", "APIG.2104": "cert_content", "APIG.3460": "name", "APIG.3400": "type" };
  const message = err.message.toLowerCase();
  if (err.code === "APIG.2106") return message.includes("private key") || message.includes("private_key") ? "private_key" : "cert_content";
  if (byCode[err.code]) return byCode[err.code];
  for (const key of ["trusted_root_ca", "private_key", "cert_content", "instance_id", "name", "type"]) {
    if (message.includes(key) || message.includes(key.replace(/_/g, " "))) return key;
  }
  return null;
}

// The upload/update form; `existing` fills it for an update (PUT with If-Match).
export function certificateForm(existing, done) {
  const f = {
    name: field("Name", h("input", { value: existing?.name ?? "", autocomplete: "off", required: true }), "4–50 characters: a letter first, then letters, digits and _"),
    type: field("Scope", h("select", { disabled: !!existing }, h("option", { value: "global" }, "global"), h("option", { value: "instance" }, "instance"))),
    instance_id: field("Instance id (instance scope)", h("input", { value: existing?.instance_id ?? "", autocomplete: "off", disabled: !!existing })),
    cert_content: field("Certificate chain (PEM, leaf first or any order)", h("textarea", { rows: 6, spellcheck: "false", class: "pem" })),
    private_key: field("Private key (PEM)", h("textarea", { rows: 4, spellcheck: "false", class: "pem", autocomplete: "off" }), "Sent once to the service, which stores it encrypted; it is never shown again."),
    trusted_root_ca: field("Trusted root CA for client certificates (PEM, optional)", h("textarea", { rows: 3, spellcheck: "false", class: "pem" })),
  };
  if (existing) f.type.input.value = existing.type;
  const formError = h("div", { class: "form-error" });
  const drop = h("div", { class: "drop", tabindex: "0", id: "pem-drop" }, "Drop PEM files here: certificates go to the chain, a private key to the key field.");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const file of e.dataTransfer.files) {
      const text = await file.text();
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) f.private_key.input.value = text;
      if (/-----BEGIN CERTIFICATE-----/.test(text)) f.cert_content.input.value = (f.cert_content.input.value ? f.cert_content.input.value.trimEnd() + "\n" : "") + text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g).join("\n");
    }
  });
  const form = h(
    "form",
    { class: "card", id: existing ? "update-form" : "upload-form" },
    h("h2", {}, existing ? "Replace the certificate" : "Upload a certificate"),
    Object.values(f).map((x) => x.row),
    drop,
    formError,
    h("button", { type: "submit" }, existing ? "Update" : "Upload"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const x of Object.values(f)) x.error.textContent = "";
    formError.textContent = "";
    const body = { name: f.name.input.value, type: f.type.input.value, cert_content: f.cert_content.input.value, private_key: f.private_key.input.value };
    if (f.instance_id.input.value) body.instance_id = f.instance_id.input.value;
    if (f.trusted_root_ca.input.value.trim()) body.trusted_root_ca = f.trusted_root_ca.input.value;
    try {
      const r = existing
        ? await api.call("PUT", api.apic(`/${encodeURIComponent(existing.id)}`), body, { headers: { "If-Match": existing.etag ?? "*" } })
        : await api.call("POST", api.apic(), body);
      f.private_key.input.value = "";
      done(r.data);
    } catch (err) {
      const key = err instanceof api.ApiError ? fieldOf(err) : null;
      if (key && f[key]) f[key].error.replaceChildren(errorBox(err));
      else formError.replaceChildren(errorBox(err));
    }
  });
  return form;
}

export async function certificatesPage(root) {
  root.append(h("h1", {}, "Certificates"));
  const inputs = {};
  const filterForm = h(
    "form",
    { class: "filters", id: "cert-filters", role: "search" },
    FILTERS.map(([key, label]) => {
      const x = field(label, h("input", { value: filters[key] ?? "", autocomplete: "off", name: key }));
      inputs[key] = x.input;
      return x.row;
    }),
    h("button", { type: "submit" }, "Filter"),
  );
  const results = h("div", { id: "cert-list" });
  root.append(filterForm, results);
  async function load() {
    results.replaceChildren(h("p", {}, "Loading…"));
    try {
      const { data } = await api.call("GET", api.apic(api.query({ ...filters, offset, limit: LIMIT })));
      results.replaceChildren(
        table(
          `SSL certificates (${data.total})`,
          [
            ["name", (c) => h("a", { href: `#/certificates/${encodeURIComponent(c.id)}` }, c.name)],
            ["common name", (c) => c.common_name],
            ["SANs", (c) => c.san.join(", ")],
            ["scope", (c) => (c.type === "instance" ? `instance ${c.instance_id}` : "global")],
            ["algorithm", (c) => `${c.algorithm_type} / ${c.signature_algorithm}`],
            ["expires", (c) => h("span", { class: daysLeft(c.not_after) < 0 ? "expired" : daysLeft(c.not_after) <= 30 ? "soon" : "" }, fmtTime(c.not_after))],
          ],
          data.certs,
          "No certificate matches.",
        ),
        pager(offset, LIMIT, data.total, (o) => {
          offset = o;
          load();
        }),
      );
    } catch (err) {
      results.replaceChildren(errorBox(err));
    }
  }
  filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    filters = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value.trim()]).filter(([, v]) => v));
    offset = 0;
    load();
  });
  await load();
  if (api.can.write()) root.append(certificateForm(null, (cert) => (location.hash = `#/certificates/${encodeURIComponent(cert.id)}`)));
}

function chainPath(cert) {
  // The API returns the leaf's names; the path shows issuer -> subject as far as it is known.
  const subject = [`CN=${cert.common_name}`, ...(cert.organization ?? []).map((o) => `O=${o}`)].join(", ");
  return h("ol", { class: "chain", id: "chain" }, h("li", {}, "issuer: ", cert.issuer.join(", ") || "(unknown)"), h("li", {}, "subject: ", subject));
}

export async function certificatePage(root, id) {
  const path = api.apic(`/${encodeURIComponent(id)}`);
  const r = await api.call("GET", path);
  const cert = { ...r.data, etag: r.headers.get("ETag") };
  const write = api.can.write();
  root.append(
    h("p", {}, h("a", { href: "#/certificates" }, "← Certificates")),
    h("h1", {}, "Certificate ", h("span", { id: "cert-name" }, cert.name)),
    facts([
      ["Common name", h("span", { id: "cert-cn" }, cert.common_name)],
      ["Subject", [`CN=${cert.common_name}`, ...cert.organization.map((o) => `O=${o}`), ...cert.organizational_unit.map((o) => `OU=${o}`), ...cert.locality.map((o) => `L=${o}`), ...cert.state.map((o) => `ST=${o}`), ...cert.country.map((o) => `C=${o}`)].join(", ")],
      ["SANs", cert.san.join(", ") || "none"],
      ["Issuer", cert.issuer.join(", ")],
      ["Valid", `${fmtTime(cert.not_before)} → ${fmtTime(cert.not_after)} (${daysLeft(cert.not_after)} days left)`],
      ["Serial", cert.serial_number],
      ["Key / signature", `${cert.algorithm_type} / ${cert.signature_algorithm}`],
      ["Scope", cert.type === "instance" ? `instance ${cert.instance_id}` : "global"],
      ["Trusted root CA", cert.is_has_trusted_root_ca ? "yes (client certificates can be verified)" : "no"],
      ["Updated", fmtTime(cert.update_time)],
    ]),
    h("h2", {}, "Chain"),
    chainPath(cert),
  );
  const fingerprint = h("dd", { id: "fingerprint" }, api.can.admin() ? "…" : "visible to admins (from the audit trail)");
  root.append(h("dl", { class: "facts" }, h("dt", {}, "SHA-256 fingerprint"), fingerprint));

  const domainsBox = h("section", { id: "domains", "aria-labelledby": "h-domains" }, h("h2", { id: "h-domains" }, "Bound domains"));
  root.append(domainsBox);
  const domainsList = h("div");
  const domainsError = h("div", { class: "form-error", id: "domains-error" });
  domainsBox.append(domainsList, domainsError);
  async function loadDomains(changed = false) {
    // A bind or unbind is a new revision: the update form's If-Match follows it (another client's change
    // still makes the update fail with APIG.3464 instead of overwriting it).
    if (changed) cert.etag = (await api.call("GET", path)).headers.get("ETag");
    const { data } = await api.call("GET", `${path}/attached-domains${api.query({ limit: 500 })}`);
    domainsList.replaceChildren(
      table(
        "Bound domains",
        [
          ["domain", (d) => d.url_domain],
          ["instance", (d) => d.instance_id ?? ""],
          ["client certificates verified", (d) => (d.verified_client_certificate_enabled ? "yes" : "no")],
          ...(write
            ? [["", (d) => button(`Unbind ${d.url_domain}`, () => act(domainsError, () => api.call("POST", `${path}/domains/detach`, { domains: [{ domain: d.url_domain }] }), () => loadDomains(true)), { class: "danger" })]]
            : []),
        ],
        data.bound_domains,
        "No domain is bound.",
      ),
    );
  }
  await loadDomains();
  if (write) {
    const domain = field("Domain", h("input", { autocomplete: "off" }));
    const instances = field("Instance ids (comma-separated, optional)", h("input", { autocomplete: "off" }));
    const bind = h("form", { class: "card inline", id: "bind-form" }, h("h3", {}, "Bind a domain"), domain.row, instances.row, h("button", { type: "submit" }, "Bind"));
    bind.addEventListener("submit", (e) => {
      e.preventDefault();
      const entry = { domain: domain.input.value.trim() };
      const ids = instances.input.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (ids.length) entry.instance_ids = ids;
      act(domain.error, () => api.call("POST", `${path}/domains/attach`, { domains: [entry] }), async () => {
        domain.input.value = "";
        await loadDomains(true);
      });
    });
    domainsBox.append(bind);
    const deleteError = h("div", { class: "form-error", id: "delete-error" });
    root.append(
      h(
        "section",
        { class: "card", id: "delete" },
        h("h2", {}, "Delete"),
        h("p", {}, "Refused while any domain is bound."),
        button("Delete this certificate", () => act(deleteError, () => api.call("DELETE", path), () => (location.hash = "#/certificates")), { class: "danger", id: "delete-button" }),
        deleteError,
      ),
      certificateForm(cert, () => window.dispatchEvent(new HashChangeEvent("hashchange"))),
    );
  }
  if (api.can.admin()) {
    const history = h("section", { id: "history", "aria-labelledby": "h-history" }, h("h2", { id: "h-history" }, "Revision history"));
    root.append(history);
    try {
      const { data } = await api.call("GET", `/v3/${api.p()}/traces${api.query({ resource_id: id, limit: 200 })}`);
      const latest = data.traces.find((t) => t.details && t.details.fingerprint_sha256);
      fingerprint.textContent = latest ? latest.details.fingerprint_sha256 : "not recorded";
      history.append(
        table(
          "Changes, newest first",
          [
            ["time", (t) => fmtTime(t.time)],
            ["action", (t) => t.trace_name],
            ["by", (t) => t.user?.name ?? ""],
            ["details", (t) => Object.entries(t.details ?? {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("; ")],
          ],
          data.traces,
        ),
      );
    } catch (err) {
      history.append(errorBox(err));
    }
  }
}
