/* Segment builder: edits the rule tree of docs/segments.md as a nested form.
 *
 * The tree lives in the hidden #id_rule textarea as JSON (what the form saves and the live count
 * posts). Every edit rewrites it and fires "rule-changed" on <body>, which htmx turns into a
 * preview request. Labels, operators and choices come from the page's #segment-vocabulary, so
 * this file holds no text of its own.
 */
(function () {
  "use strict";

  const vocab = JSON.parse(document.getElementById("segment-vocabulary").textContent);
  const T = vocab.text;
  const ORDERED = ["eq", "ne", "gt", "gte", "lt", "lte", "between"];
  const ruleInput = document.getElementById("id_rule");
  const treeBox = document.getElementById("rule-tree");
  const jsonBox = document.getElementById("rule-json");
  const jsonError = document.getElementById("rule-json-error");
  let root;

  const DEFAULTS = {
    attr: () => ({attr: "city", op: "eq", value: ""}),
    tags: () => ({tags: "any", value: []}),
    orders: () => ({orders: {window: {last_days: 180}}, measure: "count", op: "gte", value: 1}),
    events: () => ({events: {kind: "check_in", window: {last_days: 30}}, op: "gte", value: 1}),
    model: () => ({model: "rfm_class", op: "in", value: []}),
  };
  const KINDS = Object.keys(DEFAULTS);

  // -- helpers -----------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function select(options, value, onChange, attrs) {
    const box = el("select", {class: vocab.classes.select, ...attrs, onchange: (e) => onChange(e.target.value)});
    for (const [optValue, label] of options) {
      const option = el("option", {value: optValue}, label);
      option.selected = String(optValue) === String(value);
      box.append(option);
    }
    return box;
  }

  function multiSelect(options, values, onChange, attrs) {
    const chosen = new Set((values || []).map(String));
    const box = el("select", {multiple: true, size: Math.min(5, Math.max(options.length, 2)),
      class: vocab.classes.input, style: "min-width: 12rem", ...attrs,
      onchange: (e) => onChange(Array.from(e.target.selectedOptions, (o) => o.value))});
    for (const [optValue, label] of options) {
      const option = el("option", {value: optValue}, label === optValue ? label : `${label} (${optValue})`);
      option.selected = chosen.has(String(optValue));
      box.append(option);
    }
    return box;
  }

  function input(type, value, onInput, attrs) {
    return el("input", {type, value: value ?? "", class: vocab.classes.input, ...attrs,
      oninput: (e) => onInput(e.target.value)});
  }

  function listInput(values, onInput, attrs) {
    return input("text", (values || []).join(", "), (text) => onInput(
      text.split(/[,，]/).map((s) => s.trim()).filter(Boolean)), {placeholder: T.list_hint, ...attrs});
  }

  const whole = (text) => (/^\d+$/.test(text.trim()) ? parseInt(text, 10) : text);
  const opOptions = (ops) => ops.map((op) => [op, vocab.ops[op]]);
  const row = (...children) => el("div", {class: "flex flex-wrap gap-2 items-center"}, ...children);

  function changed(rerender) {
    ruleInput.value = JSON.stringify(root);
    jsonBox.value = JSON.stringify(root, null, 2);
    jsonError.hidden = true;
    if (rerender) render();
    document.body.dispatchEvent(new Event("rule-changed"));
  }

  // -- values ------------------------------------------------------------------------------
  /** The value control of a condition for its operator: type is text, code, number, money, date or flag. */
  function valueEditor(node, type, choices) {
    const set = (value, rerender) => { node.value = value; changed(rerender); };
    const single = (value, onInput) => {
      if (type === "flag") return select([["true", T.yes], ["false", T.no]], String(value), (v) => onInput(v === "true"));
      if (choices && choices.length) return select([["", "—"], ...choices], value, onInput);
      if (type === "number") return input("number", value, (v) => onInput(whole(v)), {min: 0, step: 1, style: "width: 7rem"});
      if (type === "date") return input("date", value, onInput);
      if (type === "money") return input("text", value, onInput, {inputmode: "decimal", style: "width: 8rem"});
      return input("text", value, onInput);
    };
    if (node.op === "empty") return select([["true", T.yes], ["false", T.no]], String(node.value), (v) => set(v === "true"));
    if (node.op === "last_days") {
      return row(input("number", node.value, (v) => set(whole(v)), {min: 1, style: "width: 7rem"}), T.days);
    }
    if (node.op === "in" || node.op === "not_in") {
      return choices && choices.length ? multiSelect(choices, node.value, (v) => set(v)) : listInput(node.value, (v) => set(v));
    }
    if (node.op === "between") {
      const pair = Array.isArray(node.value) ? node.value : ["", ""];
      return row(single(pair[0], (v) => set([v, pair[1]])), T.and, single(pair[1], (v) => set([pair[0], v])));
    }
    return single(node.value, (v) => set(v));
  }

  /** Changing the operator keeps a value only where it still fits. */
  function setOp(node, op, type) {
    const wasList = Array.isArray(node.value);
    node.op = op;
    if (op === "empty" || type === "flag") node.value = typeof node.value === "boolean" ? node.value : true;
    else if (op === "in" || op === "not_in") node.value = wasList ? node.value : (node.value ? [node.value] : []);
    else if (op === "between") node.value = wasList && node.value.length === 2 ? node.value : [node.value ?? "", node.value ?? ""];
    else if (wasList || typeof node.value === "boolean") node.value = "";
    changed(true);
  }

  function windowEditor(spec) {
    const win = spec.window;
    const mode = !win ? "ever" : ("last_days" in win ? "last_days" : "dates");
    const parts = [select([["ever", T.ever], ["last_days", T.last_days], ["dates", T.dates]], mode, (m) => {
      if (m === "ever") delete spec.window;
      else spec.window = m === "last_days" ? {last_days: 30} : {from: null, to: null};
      changed(true);
    })];
    if (mode === "last_days") {
      parts.push(input("number", win.last_days, (v) => { win.last_days = whole(v); changed(); },
        {min: 1, style: "width: 7rem"}), T.days);
    } else if (mode === "dates") {
      parts.push(T.from, input("date", win.from, (v) => { win.from = v || null; changed(); }),
        T.to, input("date", win.to, (v) => { win.to = v || null; changed(); }));
    }
    return row(T.window, ...parts);
  }

  // -- conditions --------------------------------------------------------------------------
  function attrEditor(node) {
    const spec = vocab.attrs[node.attr] || vocab.attrs.city;
    const attrOptions = Object.entries(vocab.attrs).map(([name, s]) => [name, s.label]);
    return row(
      select(attrOptions, node.attr, (name) => {
        const next = vocab.attrs[name];
        Object.assign(node, {attr: name, op: next.ops[0], value: next.type === "flag" ? true : ""});
        changed(true);
      }),
      select(opOptions(spec.ops), node.op, (op) => setOp(node, op, spec.type)),
      valueEditor(node, spec.type, spec.choices),
    );
  }

  function tagsEditor(node) {
    const modes = [["any", T.tag_any], ["all", T.tag_all], ["none", T.tag_none]];
    return row(select(modes, node.tags, (m) => { node.tags = m; changed(); }),
      vocab.tags.length ? multiSelect(vocab.tags, node.value, (v) => { node.value = v; changed(); })
        : listInput(node.value, (v) => { node.value = v; changed(); }));
  }

  function ordersEditor(node) {
    const spec = node.orders;
    const type = {count: "number", paid: "money", aov: "money"}[node.measure] || "date";
    const filters = [["channels", vocab.channels], ["stores", vocab.stores], ["brands", vocab.brands],
      ["roles", vocab.roles], ["products", null], ["categories", null]];
    const filterBox = el("details", {class: "w-full", open: filters.some(([key]) => spec[key]) || undefined},
      el("summary", {class: "cursor-pointer text-xs"}, T.filters),
      el("div", {class: "flex flex-wrap gap-4 mt-2"}, filters.map(([key, choices]) => {
        const set = (values) => { if (values.length) spec[key] = values; else delete spec[key]; changed(); };
        return el("label", {class: "flex flex-col gap-1 text-xs"}, T[key],
          choices && choices.length ? multiSelect(choices, spec[key], set) : listInput(spec[key], set));
      })));
    return el("div", {class: "flex flex-col gap-2"},
      row(select(Object.entries(vocab.measures), node.measure, (m) => {
        node.measure = m;
        node.value = m === "count" ? 1 : "";
        node.op = "gte";
        changed(true);
      }), select(opOptions(ORDERED), node.op, (op) => setOp(node, op, type)), valueEditor(node, type)),
      windowEditor(spec), filterBox);
  }

  function eventsEditor(node) {
    const spec = node.events;
    const props = Object.entries(spec.props || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return el("div", {class: "flex flex-col gap-2"},
      row(T.did, select(vocab.event_kinds, spec.kind, (k) => { spec.kind = k; changed(); }),
        select(opOptions(ORDERED), node.op, (op) => setOp(node, op, "number")), valueEditor(node, "number"), T.times),
      windowEditor(spec),
      row(T.props, input("text", props, (text) => {
        const parsed = {};
        for (const pair of text.split(/[,，]/)) {
          const [key, ...rest] = pair.split("=");
          if (!key.trim()) continue;
          const value = rest.join("=").trim();
          parsed[key.trim()] = /^-?\d+$/.test(value) ? parseInt(value, 10) : value === "true" ? true : value === "false" ? false : value;
        }
        if (Object.keys(parsed).length) spec.props = parsed; else delete spec.props;
        changed();
      }, {placeholder: "activity=21-day-camp"})));
  }

  function modelEditor(node) {
    const isClass = node.model === "rfm_class" || node.model === "lifecycle";
    const choices = node.model === "rfm_class" ? vocab.rfm_classes : node.model === "lifecycle" ? vocab.lifecycle_stages : null;
    return row(
      select(Object.entries(vocab.models), node.model, (m) => {
        const cls = m === "rfm_class" || m === "lifecycle";
        Object.assign(node, {model: m, op: cls ? "in" : "gte", value: cls ? [] : 4});
        changed(true);
      }),
      select([["", T.any_brand], ...vocab.brands], node.brand || "", (b) => { if (b) node.brand = b; else delete node.brand; changed(); }),
      select(opOptions(isClass ? ["eq", "ne", "in", "not_in"] : ORDERED), node.op, (op) => setOp(node, op, isClass ? "text" : "number")),
      valueEditor(node, isClass ? "text" : "number", choices),
    );
  }

  const EDITORS = {attr: attrEditor, tags: tagsEditor, orders: ordersEditor, events: eventsEditor, model: modelEditor};
  const kindOf = (node) => KINDS.find((k) => node && typeof node === "object" && k in node);
  const groupKind = (node) => ["all", "any"].find((k) => node && typeof node === "object" && Array.isArray(node[k]));

  // -- the tree ----------------------------------------------------------------------------
  /** One item of a group (or the root): a condition or a nested group, possibly under "not". */
  function item(node, path, replace, remove) {
    const negated = node && typeof node === "object" && "not" in node && Object.keys(node).length === 1;
    const inner = negated ? node.not : node;
    const innerPath = negated ? (path ? `${path}.not` : "not") : path;
    const setInner = (next) => replace(negated ? {not: next} : next);
    const notBox = el("label", {class: "flex gap-1 items-center text-xs whitespace-nowrap"},
      el("input", {type: "checkbox", checked: negated || undefined, onchange: (e) => {
        replace(e.target.checked ? {not: inner} : inner);
        changed(true);
      }}), T.not);
    const removeButton = remove ? el("button", {type: "button", "data-action": "remove", class: "ml-auto text-red-600 text-xs", onclick: () => { remove(); changed(true); }}, T.remove) : null;

    const gk = groupKind(inner);
    if (gk) {
      return el("fieldset", {class: "border border-base-200 dark:border-base-700 flex flex-col gap-2 p-3 rounded-default", "data-path": innerPath},
        row(select([["all", T.all], ["any", T.any]], gk, (k) => { setInner({[k]: inner[gk]}); changed(true); }), notBox, removeButton),
        inner[gk].map((child, i) => item(child, `${innerPath ? innerPath + "." : ""}${gk}[${i}]`,
          (next) => { inner[gk][i] = next; }, () => { inner[gk].splice(i, 1); })),
        row(el("button", {type: "button", "data-action": "add-condition", class: "text-primary-600 text-sm", onclick: () => { inner[gk].push(DEFAULTS.attr()); changed(true); }}, "+ " + T.add_condition),
          el("button", {type: "button", "data-action": "add-group", class: "text-primary-600 text-sm", onclick: () => { inner[gk].push({all: [DEFAULTS.attr()]}); changed(true); }}, "+ " + T.add_group)));
    }
    const kind = kindOf(inner) || "attr";
    const body = kindOf(inner) ? EDITORS[kind](inner) : el("code", {}, JSON.stringify(inner));
    return el("div", {class: "border border-base-200 dark:border-base-700 flex flex-col gap-2 p-3 rounded-default", "data-path": innerPath},
      row(select(KINDS.map((k) => [k, T[k]]), kind, (k) => { setInner(DEFAULTS[k]()); changed(true); }), notBox, removeButton),
      body);
  }

  function render() {
    treeBox.replaceChildren(item(root, "", (next) => { root = next; }, null));
  }

  function load(text) {
    root = JSON.parse(text);
    if (!groupKind(root) && !(root && "not" in root)) root = {all: [root]};
  }

  // The preview's error names a node path (all[1].orders.window.last_days): mark that node.
  document.body.addEventListener("htmx:afterSwap", () => {
    treeBox.querySelectorAll("[data-invalid]").forEach((node) => node.removeAttribute("data-invalid"));
    const error = document.getElementById("preview-error");
    if (!error) return;
    const field = error.dataset.field || "";
    let best = null;
    for (const node of treeBox.querySelectorAll("[data-path]")) {
      const path = node.dataset.path;
      if ((field === path || field.startsWith(path + ".") || path === "") && (!best || path.length >= best.dataset.path.length)) best = node;
    }
    if (best) best.setAttribute("data-invalid", "true");
  });

  jsonBox.addEventListener("change", () => {
    try {
      load(jsonBox.value);
      changed(true);
    } catch (exc) {
      jsonError.textContent = String(exc);
      jsonError.hidden = false;
    }
  });

  try { load(ruleInput.value); } catch (exc) { root = {all: [DEFAULTS.attr()]}; }
  ruleInput.value = JSON.stringify(root);
  jsonBox.value = JSON.stringify(root, null, 2);
  render();
})();
