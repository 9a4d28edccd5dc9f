// A collapsible JSON tree for a step's input and output. Objects and arrays fold; the first levels start
// open. A value the recorder cut ({truncated: true, preview: "..."}) is shown as its preview with a mark,
// so nobody mistakes a cut value for the whole message.
import React from "react";

const mono = { fontFamily: "var(--code-font-family, monospace)", fontSize: "12px", lineHeight: "18px" };
const colours = { string: "var(--green-11)", number: "var(--blue-11)", boolean: "var(--orange-11)", null: "var(--gray-10)" };

function isCut(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && value.truncated === true && typeof value.preview === "string";
}

function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function Scalar({ value }) {
  const kind = value === null ? "null" : typeof value;
  const text = kind === "string" ? JSON.stringify(value) : String(value);
  return <span style={{ color: colours[kind] || "inherit", wordBreak: "break-all" }}>{text}</span>;
}

function Node({ name, value, depth, open }) {
  const label = name === undefined ? null : <span style={{ color: "var(--gray-11)" }}>{name}: </span>;
  if (isCut(value)) {
    return (
      <div style={{ paddingLeft: depth ? 14 : 0 }}>
        {label}
        <span data-testid="json-truncated" style={{ background: "var(--amber-4)", color: "var(--amber-11)", borderRadius: 4, padding: "0 4px", marginRight: 6 }}>
          truncated
        </span>
        <span style={{ color: "var(--gray-11)", wordBreak: "break-all" }}>{value.preview}…</span>
      </div>
    );
  }
  if (value === null || typeof value !== "object") {
    return <div style={{ paddingLeft: depth ? 14 : 0 }}>{label}<Scalar value={value} /></div>;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const [left, right] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) {
    return <div style={{ paddingLeft: depth ? 14 : 0 }}>{label}{left + right}</div>;
  }
  return (
    <details open={depth < open} style={{ paddingLeft: depth ? 14 : 0 }}>
      <summary style={{ cursor: "pointer" }}>
        {label}
        {left}
        <span style={{ color: "var(--gray-10)" }}> {count(entries.length, Array.isArray(value) ? "item" : "key")} </span>
        {right}
      </summary>
      {entries.map(([key, child]) => (
        <Node key={key} name={key} value={child} depth={depth + 1} open={open} />
      ))}
    </details>
  );
}

// `value`: any JSON value. `open`: how many levels start unfolded (2 unless told).
export function JsonView({ value, open }) {
  return (
    <div data-testid="json-view" style={{ ...mono, overflowX: "auto", maxHeight: 420, overflowY: "auto" }}>
      <Node value={value === undefined ? null : value} depth={0} open={open === undefined ? 2 : open} />
    </div>
  );
}
