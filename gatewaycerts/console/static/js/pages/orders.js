// Orders (Barbican): the project's orders, newest first, with their status and what they produced.
import * as api from "../api.js";
import { h, table, fmtTime } from "../dom.js";
import { pager, statusBadge } from "../ui.js";

const LIMIT = 25;
let offset = 0;

export async function ordersPage(root) {
  root.append(h("h1", {}, "Orders"));
  const box = h("div", { id: "orders" });
  root.append(box);
  async function load() {
    const { data } = await api.call("GET", `/v1/orders${api.query({ offset, limit: LIMIT })}`);
    box.replaceChildren(
      table(
        `Orders (${data.total})`,
        [
          ["order", (o) => o.order_ref.split("/").pop()],
          ["type", (o) => o.type],
          ["status", (o) => statusBadge(o.status)],
          ["what", (o) => [o.meta?.name, o.meta?.subject_dn, o.meta?.algorithm && `${o.meta.algorithm} ${o.meta.bit_length ?? ""}`].filter(Boolean).join(" · ")],
          ["result", (o) => (o.container_ref || o.secret_ref || o.sub_status_message || "").split("/").pop()],
          ["created", (o) => fmtTime(o.created)],
          ["by", (o) => o.creator_id ?? ""],
        ],
        data.orders,
        "No order yet.",
      ),
      pager(offset, LIMIT, data.total, (o) => {
        offset = o;
        load();
      }),
    );
  }
  await load();
}
