// Certificate requests (Notary's review queue): outstanding requests with their CSR's names and key; sign
// with a chosen CA, reject, revoke; the resulting chain as a path.
import * as api from "../api.js";
import { h, table, field, button, fmtTime } from "../dom.js";
import { certificateNames, csrAltNames, pemBlocks } from "../der.js";
import { act, errorBox, statusBadge } from "../ui.js";

const REQS = "/api/v1/certificate_requests";
let status = "Outstanding";

function chain(pem) {
  try {
    const certs = pemBlocks(pem, "CERTIFICATE").map(certificateNames);
    if (!certs.length) return "";
    return h("ol", { class: "chain" }, certs.map((c) => h("li", {}, c.subject, h("span", { class: "muted" }, ` (serial ${c.serial}, until ${fmtTime(c.notAfter.getTime())})`))));
  } catch {
    return "the chain could not be read";
  }
}

const DN = { common_name: "CN", organization: "O", organizational_unit: "OU", locality: "L", state: "ST", country: "C" };

// The CSR's names (subject from the service's parser, SANs read here) and its key.
async function csrFacts(req) {
  let sans = [];
  try {
    sans = pemBlocks(req.csr, "CERTIFICATE REQUEST").flatMap(csrAltNames);
  } catch {
    /* shown without SANs */
  }
  try {
    const { data } = await api.call("POST", "/v1/private-certificates/csr/parse", { csr: req.csr });
    const dn = data.distinguished_name ?? {};
    const subject = Object.entries(dn).filter(([, v]) => v).map(([k, v]) => `${DN[k] ?? k}=${v}`).join(", ");
    return [[subject, ...sans].filter(Boolean).join("; "), `${data.key_algorithm}${data.key_algorithm_length ? ` ${data.key_algorithm_length}` : ""}`];
  } catch {
    return [[req.common_name ?? "", ...sans].filter(Boolean).join("; "), ""];
  }
}

export async function requestsPage(root) {
  root.append(h("h1", {}, "Certificate requests"));
  const select = field("Status", h("select", {}, ["Outstanding", "Active", "Rejected", "Revoked", ""].map((s) => h("option", { value: s }, s || "any"))));
  select.input.value = status;
  select.input.addEventListener("change", () => {
    status = select.input.value;
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  });
  root.append(h("div", { class: "filters" }, select.row));
  const [{ data }, cas] = await Promise.all([
    api.call("GET", `${REQS}${api.query({ status, limit: 1000 })}`),
    api.call("GET", "/api/v1/certificate_authorities").then((r) => r.data.result, () => []),
  ]);
  const requests = data.result;
  const parsed = await api.pool(requests.map((r) => () => csrFacts(r)), 4);
  const admin = api.can.admin();
  const signers = cas.filter((c) => c.enabled); // active CAs: the service refuses any other with its reason
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  const rows = requests.map((r, i) => ({ r, names: parsed[i][0], key: parsed[i][1] }));
  root.append(
    table(
      `Requests (${requests.length})`,
      [
        ["CSR names", (x) => h("span", { class: "csr-names" }, x.names)],
        ["key", (x) => x.key],
        ["status", (x) => statusBadge(x.r.status)],
        ["requested", (x) => `${fmtTime(x.r.created_at)} by ${x.r.requested_by ?? "?"}`],
        ["certificate chain", (x) => (x.r.certificate_chain ? chain(x.r.certificate_chain) : "")],
        ...(admin
          ? [
              [
                "review",
                (x) => {
                  const error = h("div", { class: "form-error" });
                  const id = encodeURIComponent(x.r.id);
                  if (x.r.status === "Outstanding") {
                    const ca = h(
                      "select",
                      { "aria-label": `CA to sign request ${x.r.id} with` },
                      signers.map((c) => h("option", { value: c.id }, c.common_name ?? c.id)),
                    );
                    return h(
                      "div",
                      { class: "review" },
                      ca,
                      button("Sign", () => act(error, () => api.call("POST", `${REQS}/${id}/sign`, { certificate_authority_id: ca.value }), reload)),
                      button("Reject", () => act(error, () => api.call("POST", `${REQS}/${id}/reject`), reload), { class: "danger" }),
                      error,
                    );
                  }
                  if (x.r.status === "Active" && x.r.certificate_authority_id)
                    return h("div", { class: "review" }, button("Revoke", () => act(error, () => api.call("POST", `${REQS}/${id}/certificate/revoke`, {}), reload), { class: "danger" }), error);
                  return "";
                },
              ],
            ]
          : []),
      ],
      rows,
      "No request in this state.",
    ),
  );
}
