/* isu dashboard: picks the published numbers for the chosen filters and draws them with Plotly.
   Everything it shows is in the embedded data (id "isu-data"); it fetches nothing, so the page
   works offline, on an intranet or as an e-mail attachment. A missing value shows as "..". */
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("isu-data").textContent);
  var C = M.colours;
  var HIDDEN = "..";
  var CONFIG = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};
  var FIGS = ["beforeafter", "rci", "goals", "funnel", "trend", "attrition"];
  var PRINT_WIDTH = 1000;  /* CSS pixels across A4 landscape within 12 mm margins */
  var state = {period: M["default"].period, cat: "all", need: "all",
               instr: M.dims.instruments.length ? M.dims.instruments[0].code : "all"};

  function t(key, vals) {
    var s = Object.prototype.hasOwnProperty.call(M.text, key) ? M.text[key] : key;
    return vals ? s.replace(/\{(\w+)\}/g, function (_, k) { return vals[k]; }) : s;
  }
  var formats = {};
  function nf(digits, style) {
    var k = digits + (style || "");
    if (!formats[k]) {
      formats[k] = new Intl.NumberFormat(M.locale, {style: style || "decimal",
        minimumFractionDigits: digits, maximumFractionDigits: digits});
    }
    return formats[k];
  }
  function num(v, d) { return v == null ? HIDDEN : nf(d).format(v).replace(/^-/, "\u2212"); }
  function pct(v) { return v == null ? HIDDEN : nf(0, "percent").format(v); }
  function copy(o) { return JSON.parse(JSON.stringify(o)); }

  /* ---- reading cells ---- */
  var index = {};
  Object.keys(M.measures).forEach(function (kind) {
    index[kind] = {};
    M.measures[kind].forEach(function (m, i) { index[kind][m] = i; });
  });
  function cell(geo, period, cat, need, instr) {
    var values = M.cells[[geo, period, cat, need, instr].join("|")];
    if (!values) return null;
    var kind = instr === "all" ? "all" : "instrument";
    return function (m) {
      var i = index[kind][m];
      return i === undefined || i >= values.length ? null : values[i];
    };
  }
  function outcome(row, geo, period) {
    return cell(geo === undefined ? M.focus : geo, period || state.period, row.cat, row.need, state.instr);
  }
  function general(row) { return cell(M.focus, state.period, row.cat, row.need, "all"); }
  var NONE = function () { return null; };

  function labelOf(list, code) {
    for (var i = 0; i < list.length; i++) if (list[i][0] === code) return list[i][1];
    return code;
  }
  function instrument() {
    for (var i = 0; i < M.dims.instruments.length; i++) {
      if (M.dims.instruments[i].code === state.instr) return M.dims.instruments[i];
    }
    return {code: state.instr, label: state.instr, better: "", min: null, max: null};
  }

  /* Rows. No filter: the total, then one row per intervention and one per need area (two groups
     under bold headers). An intervention: its total, then its need areas where published crossed;
     a need area likewise; both: that one combination. Rows without any published cell are left out,
     and so are rows where the chosen instrument was published as never used (t0_n = 0): there is
     nothing to hide there, so ".." would wrongly suggest secrecy. */
  function rows() {
    var cats = M.dims.categories, needs = M.dims.needs, out = [];
    function has(r) { var o = outcome(r); return o ? o("t0_n") !== 0 : !!general(r); }
    function group(title, list) {
      var members = list.filter(has);
      if (members.length && title) out.push({header: true, label: "<b>" + title + "</b>"});
      out.push.apply(out, members);
    }
    var catLabel = state.cat === "all" ? t("all_interventions") : labelOf(cats, state.cat);
    var needLabel = state.need === "all" ? t("all_needs") : labelOf(needs, state.need);
    var total = {cat: state.cat, need: state.need, total: true,
                 label: state.cat !== "all" && state.need !== "all" ? catLabel + ": " + needLabel
                        : state.cat !== "all" ? catLabel : state.need !== "all" ? needLabel : t("all_interventions")};
    if (has(total)) out.push(total);
    var byCat = cats.map(function (c) { return {cat: c[0], need: state.need, label: c[1]}; });
    var byNeed = needs.map(function (n) { return {cat: state.cat, need: n[0], label: n[1]}; });
    if (state.cat === "all" && state.need === "all") {
      group(t("group_interventions"), byCat);
      group(t("group_needs"), byNeed);
    } else if (state.cat === "all") {
      group(t("group_interventions"), byCat);
    } else if (state.need === "all") {
      group(t("group_needs"), byNeed);
    }
    return out;
  }
  function dataRows(rs) { return rs.filter(function (r) { return !r.header; }); }

  /* Codes of one dimension that have published cells together with the other filter's choice. */
  function published(dim, other, otherValue) {
    var seen = {}, prefix = M.focus + "|";
    Object.keys(M.cells).forEach(function (key) {
      if (key.lastIndexOf(prefix, 0) !== 0) return;
      var parts = key.split("|"), code = dim === "cat" ? parts[2] : parts[3];
      var with_ = other === "cat" ? parts[2] : parts[3];
      if (with_ === otherValue) seen[code] = true;
    });
    return seen;
  }

  /* ---- drawing helpers ---- */
  function height(n) { return Math.max(280, 120 + (n > 15 ? 38 : 48) * n); }
  /* Rows keep the order of the filter lists, whichever trace draws them first. */
  function rowAxis(layout, labels) {
    layout.yaxis.categoryorder = "array";
    layout.yaxis.categoryarray = labels;
    layout.height = height(labels.length);
    return layout;
  }
  function empty(layout, key) {
    layout.annotations = [{text: t(key || "no_data"), showarrow: false, xref: "paper", yref: "paper",
                           x: 0.5, y: 0.5, font: {size: 18, color: "#555"}}];
    ["xaxis", "yaxis", "xaxis2"].forEach(function (a) { if (layout[a]) layout[a].visible = false; });
    layout.height = 260;
    return layout;
  }
  function hiddenTrace(labels, x, xaxis) {
    return {type: "scatter", mode: "text", x: labels.map(function () { return x; }), y: labels,
            text: labels.map(function () { return HIDDEN; }), textfont: {size: 26, color: "#333"},
            xaxis: xaxis || "x", hovertext: labels.map(function () { return t("hidden_hover"); }),
            hoverinfo: "text", showlegend: false};
  }
  function draw(id, traces, layout) {
    Plotly.react(document.getElementById("fig-" + id), traces, layout, CONFIG);
  }
  function axisRange(ins, values) {
    if (ins.min != null && ins.max != null) {
      var pad = (ins.max - ins.min) * 0.04;
      return [ins.min - pad, ins.max + pad];
    }
    var v = values.filter(function (x) { return x != null; });
    return v.length ? [Math.min.apply(null, v), Math.max.apply(null, v)] : [0, 1];
  }
  /* Percent ticks in the page's language ("40 %" in Swedish) over a zoomed share axis. */
  function shareTicks(axis, low, high) {
    var step = high - low > 0.5 ? 0.2 : high - low > 0.2 ? 0.1 : 0.05, vals = [];
    for (var v = Math.ceil(low / step - 1e-9) * step; v <= high + 1e-9; v += step) vals.push(Math.round(v * 1000) / 1000);
    axis.tickvals = vals;
    axis.ticktext = vals.map(pct);
  }
  function scaleTitle(ins) {
    var better = ins.better === "lower" ? t("better_lower") : ins.better === "higher" ? t("better_higher") : "";
    return ins.label + (better ? " (" + better + ")" : "");
  }

  function drawBeforeAfter(rs) {
    var lay = copy(M.layouts.beforeafter), ins = instrument();
    var y = [], m0 = [], m1 = [], ch = [], up = [], down = [], n = [], segX = [], segY = [], hid = [];
    var e0p = [], e0m = [], e1p = [], e1m = [], anyCi = false;
    var labels = rs.map(function (r) { return r.label; });
    rs = dataRows(rs);
    rs.forEach(function (r) {
      var o = outcome(r) || NONE, a = o("mean_t0"), b = o("mean_t1"), d = o("mean_change");
      y.push(r.label); m0.push(a); m1.push(b); ch.push(d); n.push(num(o("paired_n"), 0));
      up.push(d == null || o("change_ci_high") == null ? null : o("change_ci_high") - d);
      down.push(d == null || o("change_ci_low") == null ? null : d - o("change_ci_low"));
      [["mean_t0", a, e0p, e0m], ["mean_t1", b, e1p, e1m]].forEach(function (s) {
        var hi = o(s[0] + "_ci_high"), lo = o(s[0] + "_ci_low");
        s[2].push(s[1] == null || hi == null ? null : hi - s[1]);
        s[3].push(s[1] == null || lo == null ? null : s[1] - lo);
        anyCi = anyCi || hi != null;
      });
      if (a != null && b != null) { segX.push(a, b, null); segY.push(r.label, r.label, null); }
      if (a == null && b == null) hid.push(r.label);
    });
    if (!rs.length || hid.length === rs.length) { draw("beforeafter", [], empty(lay)); return; }
    var range = axisRange(ins, m0.concat(m1));
    /* The change axis always shows zero, so a reader sees whether an interval crosses it. */
    var ends = [0];
    ch.forEach(function (d, i) { if (d != null) ends.push(d - (down[i] || 0), d + (up[i] || 0)); });
    var lowC = Math.min.apply(null, ends), highC = Math.max.apply(null, ends), padC = (highC - lowC) * 0.08 || 0.1;
    lay.xaxis2.range = [lowC - padC, highC + padC];
    lay.xaxis.title = {text: scaleTitle(ins)};
    lay.xaxis.range = range;
    rowAxis(lay, labels);
    var better = ins.better === "lower" ? "better_left" : ins.better === "higher" ? "better_right" : null;
    if (better) {
      lay.annotations = [{text: t(better), xref: "x2 domain", yref: "paper", x: 0.5, y: 1.0, yanchor: "bottom",
                          showarrow: false, font: {size: 15, color: "#333"}}];
    }
    function point(name, x, colour, symbol, plus, minus) {
      return {type: "scatter", mode: "markers", name: name, x: x, y: y, customdata: n,
              marker: {color: colour, size: 18, symbol: symbol, line: {color: "white", width: 1.5}},
              error_x: anyCi ? {type: "data", symmetric: false, array: plus, arrayminus: minus,
                                color: colour, thickness: 2, width: 6} : undefined,
              hovertemplate: "%{y}<br>" + name + ": %{x:.2f}<br>" + t("hover_paired_n") + " %{customdata}<extra></extra>"};
    }
    var traces = [
      {type: "scatter", mode: "lines", x: segX, y: segY, line: {color: "#9a9a9a", width: 5},
       hoverinfo: "skip", showlegend: false},
      point(t("legend_before"), m0, C.before, "circle", e0p, e0m),
      point(t("legend_after"), m1, C.after, "diamond", e1p, e1m),
      {type: "scatter", mode: "markers+text", name: t("legend_change"), x: ch, y: y, xaxis: "x2",
       text: ch.map(function (v) { return v == null ? "" : num(v, 2); }), textposition: "top center",
       textfont: {size: 14}, customdata: n, showlegend: false,
       marker: {color: C.change, size: 13, symbol: "square"},
       error_x: {type: "data", symmetric: false, array: up, arrayminus: down, color: C.change, thickness: 2.5, width: 8},
       hovertemplate: "%{y}<br>" + t("legend_change") + ": %{x:.2f}<br>" + t("hover_paired_n") + " %{customdata}<extra></extra>"}
    ];
    if (hid.length) {
      traces.push(hiddenTrace(hid, (range[0] + range[1]) / 2, "x"));
      traces.push(hiddenTrace(hid, 0, "x2"));
    }
    draw("beforeafter", traces, lay);
  }

  function stacked(id, rs, parts, shareOf) {
    var lay = copy(M.layouts[id]), labels = rs.map(function (r) { return r.label; }), hid = [];
    rs = dataRows(rs);
    var y = rs.map(function (r) { return r.label; });
    var rowsShares = rs.map(function (r) {
      var s = shareOf(r);
      if (!s) hid.push(r.label);
      return s;
    });
    if (!rs.length || hid.length === rs.length) { draw(id, [], empty(lay)); return; }
    /* What hidden parts of a row add up to is public (1 minus the shown shares): drawn hatched as "..". */
    var rest = rowsShares.map(function (s) {
      if (!s || !s.some(function (x) { return x.share == null; })) return null;
      var shown = s.reduce(function (a, x) { return a + (x.share || 0); }, 0);
      return shown < 0.9995 ? 1 - shown : null;
    });
    var traces = parts.map(function (p, k) {
      return {type: "bar", orientation: "h", name: p.name, y: y,
              x: rowsShares.map(function (s) { return s ? s[k].share : null; }),
              text: rowsShares.map(function (s) { return s && s[k].share != null ? pct(s[k].share) : ""; }),
              customdata: rowsShares.map(function (s) { return s && s[k].n != null ? num(s[k].n, 0) : HIDDEN; }),
              marker: {color: p.colour, line: {color: "white", width: 1}},
              texttemplate: "%{text}", textposition: "inside", insidetextanchor: "middle",
              textfont: {size: 16, color: p.dark ? "white" : "#1a1a1a"},
              hovertemplate: "%{y}<br>" + p.name + ": %{text} (" + t("hover_n") + " %{customdata})<extra></extra>"};
    });
    if (rest.some(function (v) { return v != null; })) {
      traces.push({type: "bar", orientation: "h", name: t("legend_hidden"), y: y, x: rest,
                   text: rest.map(function (v) { return v == null ? "" : HIDDEN; }), texttemplate: "%{text}",
                   textposition: "inside", insidetextanchor: "middle", textfont: {size: 20, color: "#1a1a1a"},
                   marker: {color: "white", line: {color: "#777", width: 1}, pattern: {shape: "/", fgcolor: "#999", size: 8}},
                   hovertemplate: "%{y}<br>" + t("hidden_hover") + "<extra></extra>"});
    }
    if (hid.length) traces.push(hiddenTrace(hid, 0.5));
    rowAxis(lay, labels);
    draw(id, traces, lay);
  }

  function drawRci(rs) {
    var parts = [["improved", true], ["unchanged", false], ["deteriorated", true]].map(function (p) {
      return {key: p[0], name: t("legend_" + p[0]), colour: C[p[0]], dark: p[1]};
    });
    stacked("rci", rs, parts, function (r) {
      var o = outcome(r);
      if (!o) return null;
      var s = parts.map(function (p) { return {share: o("share_" + p.key), n: o(p.key + "_n")}; });
      return s.some(function (x) { return x.share; }) ? s : null;
    });
  }

  function drawGoals(rs) {
    /* Shares of all follow-ups in the row: the four levels, then "not assessed". */
    var parts = M.dims.goal_levels.map(function (l) {
      return {key: l[0], name: l[1], colour: C["goal_" + l[0]] || C.series[0],
              dark: l[0] === "goal_met" || l[0] === "worse"};
    });
    stacked("goals", rs, parts, function (r) {
      var g = general(r), total = g && g("records");
      if (!total) return null;
      var s = parts.map(function (p) {
        var c = g("goal_" + p.key + "_n");
        return {share: c == null ? null : c / total, n: c};
      });
      return s.some(function (x) { return x.share; }) ? s : null;  /* only zeros shown: nothing to draw */
    });
  }

  /* Control limits around share p0: linear interpolation between the two precomputed rows
     (overall shares 0, 0.01, ..., 1) of the limit table, cut a little beyond the largest unit. */
  function limits(p0, nMax) {
    var tab = M.funnel.limits, pos = p0 / tab.p_step, i = Math.max(0, Math.min(Math.floor(pos), tab.lo95.length - 2));
    var w = pos - i, top = 0, out = {n: []};
    while (top < tab.n.length && tab.n[top] <= nMax * 1.15) top++;
    top = Math.min(Math.max(top + 1, 2), tab.n.length);
    out.n = tab.n.slice(0, top);
    ["lo95", "hi95", "lo998", "hi998"].forEach(function (k) {
      out[k] = out.n.map(function (_, j) { return (1 - w) * tab[k][i][j] + w * tab[k][i + 1][j]; });
    });
    return out;
  }

  function drawFunnel() {
    var lay = copy(M.layouts.funnel);
    var combo = M.funnel.combos[[state.period, state.cat, state.need, state.instr].join("|")];
    if (!combo || !combo.points.length) { draw("funnel", [], empty(lay, "no_funnel")); return; }
    var f = limits(combo.p0, Math.max.apply(null, combo.points.map(function (p) { return p[1]; })));
    f.p0 = combo.p0; f.points = combo.points;
    function line(name, y, dash, group, legend) {
      return {type: "scatter", mode: "lines", name: name, x: f.n, y: y, legendgroup: group, showlegend: legend,
              line: {color: C.limit, width: 2, dash: dash, shape: "spline"}, hoverinfo: "skip"};
    }
    var focusKey = M.geos[M.focus].key, pts = [], focus = [];
    f.points.forEach(function (p) { (M.members[p[0]].key === focusKey ? focus : pts).push(p); });
    function limitAt(key, n) {  /* the limit at size n, by linear interpolation on the grid */
      var j = 0;
      while (j < f.n.length - 1 && f.n[j + 1] < n) j++;
      if (j === f.n.length - 1) return f[key][j];
      var w = Math.min(Math.max((n - f.n[j]) / (f.n[j + 1] - f.n[j]), 0), 1);
      return (1 - w) * f[key][j] + w * f[key][j + 1];
    }
    function outside(p) { return p[2] < limitAt("lo95", p[1]) || p[2] > limitAt("hi95", p[1]); }
    function points(list, name, colour, size, symbol, labelAll) {
      return {type: "scatter", mode: "markers+text", name: name,
              x: list.map(function (p) { return p[1]; }), y: list.map(function (p) { return p[2]; }),
              text: list.map(function (p) { return labelAll || outside(p) ? M.members[p[0]].label : ""; }),
              customdata: list.map(function (p) { return [M.members[p[0]].label, pct(p[2]), num(p[1], 0)]; }),
              textposition: "top center", textfont: {size: 14, color: "#222"}, cliponaxis: false,
              marker: {color: colour, size: size, symbol: symbol, line: {color: "white", width: 1.5}},
              hovertemplate: "%{customdata[0]}<br>" + t("axis_share_improved") + ": %{customdata[1]}<br>" +
                             t("hover_paired_n") + " %{customdata[2]}<extra></extra>"};
    }
    /* Zoom the share axis on the points and on the limits from half the smallest unit on. */
    var nMin = Math.min.apply(null, f.points.map(function (p) { return p[1]; })) / 2;
    var ys = f.points.map(function (p) { return p[2]; }).concat([f.p0, limitAt("lo998", nMin), limitAt("hi998", nMin)]);
    var lowY = Math.max(0, Math.min.apply(null, ys) - 0.05), highY = Math.min(1, Math.max.apply(null, ys) + 0.05);
    lay.yaxis.range = [lowY, highY];
    shareTicks(lay.yaxis, lowY, highY);
    var traces = [
      line(t("legend_limit_998"), f.lo998, "dot", "l998", true), line("", f.hi998, "dot", "l998", false),
      line(t("legend_limit_95"), f.lo95, "dash", "l95", true), line("", f.hi95, "dash", "l95", false),
      {type: "scatter", mode: "lines", name: t("legend_overall", {name: M.reference, share: pct(f.p0)}),
       x: [f.n[0], f.n[f.n.length - 1]], y: [f.p0, f.p0], line: {color: C.change, width: 2.5}, hoverinfo: "skip"},
      points(pts, t("legend_municipalities"), C.point, 14, "circle", false)
    ];
    if (focus.length) traces.push(points(focus, M.geos[M.focus].label, C.focus, 20, "diamond", true));
    lay.height = 520;
    draw("funnel", traces, lay);
  }

  function drawTrend() {
    var lay = copy(M.layouts.trend), periods = M.dims.trend_periods, traces = [];
    var total = rows()[0] || {cat: state.cat, need: state.need};
    M.geos.forEach(function (g, gi) {
      var y = [], plus = [], minus = [], n = [];
      periods.forEach(function (p) {
        var o = outcome(total, gi, p[0]) || NONE, s = o("share_improved");
        y.push(s); n.push([pct(s), num(o("paired_n"), 0)]);
        plus.push(s == null || o("share_improved_ci_high") == null ? null : o("share_improved_ci_high") - s);
        minus.push(s == null || o("share_improved_ci_low") == null ? null : s - o("share_improved_ci_low"));
      });
      if (!y.some(function (v) { return v != null; })) return;
      var colour = C.series[gi % C.series.length], symbols = ["circle", "diamond", "square", "triangle-up", "x"];
      traces.push({type: "scatter", mode: "lines+markers", name: g.label, customdata: n,
                   x: periods.map(function (p) { return p[1]; }), y: y,
                   line: {color: colour, width: gi === M.focus ? 4 : 2.5, dash: gi === M.focus ? "solid" : "dash"},
                   marker: {color: colour, size: gi === M.focus ? 14 : 11, symbol: symbols[gi % symbols.length]},
                   error_y: {type: "data", symmetric: false, array: plus, arrayminus: minus, color: colour, thickness: 1.5, width: 6},
                   hovertemplate: g.label + "<br>%{x}: %{customdata[0]} (" + t("hover_paired_n") + " %{customdata[1]})<extra></extra>"});
    });
    if (!traces.length) { draw("trend", [], empty(lay)); return; }
    lay.showlegend = true;
    lay.height = 440;
    draw("trend", traces, lay);
  }

  function drawAttrition(rs) {
    var lay = copy(M.layouts.attrition), ins = instrument(), y = [], comp = [], drop = [], rate = [];
    rs.forEach(function (r) {
      if (r.header) { y.push(r.label); comp.push(null); drop.push(null); rate.push(""); return; }
      var o = outcome(r) || NONE, a = o("completers_mean_t0"), b = o("dropouts_mean_t0");
      if (a == null && b == null) return;
      y.push(r.label + " · " + t("attrition_short", {share: pct(o("attrition_rate"))}));
      comp.push(a); drop.push(b); rate.push(pct(o("attrition_rate")));
    });
    while (y.length && /^<b>/.test(y[y.length - 1])) { y.pop(); comp.pop(); drop.pop(); rate.pop(); }
    for (var i = y.length - 2; i >= 0; i--) {  /* a header whose group has no publishable row */
      if (/^<b>/.test(y[i]) && /^<b>/.test(y[i + 1])) { y.splice(i, 1); comp.splice(i, 1); drop.splice(i, 1); rate.splice(i, 1); }
    }
    if (!comp.some(function (v) { return v != null; }) && !drop.some(function (v) { return v != null; })) {
      draw("attrition", [], empty(lay, "no_attrition"));
      return;
    }
    lay.xaxis.title = {text: t("axis_baseline", {scale: scaleTitle(ins)})};
    lay.xaxis.range = axisRange(ins, comp.concat(drop));
    rowAxis(lay, y);
    function dots(name, x, colour, symbol) {
      return {type: "scatter", mode: "markers", name: name, x: x, y: y, customdata: rate,
              marker: {color: colour, size: 18, symbol: symbol, line: {color: "white", width: 1.5}},
              hovertemplate: "%{y}<br>" + name + ": %{x:.2f}<extra></extra>"};
    }
    draw("attrition", [dots(t("legend_completers"), comp, C.completers, "circle"),
                       dots(t("legend_dropouts"), drop, C.dropouts, "diamond")], lay);
  }

  /* ---- numbers: headline cards and the table ---- */
  function drawCards(rs) {
    var total = rs[0], o = (total && outcome(total)) || NONE, g = (total && general(total)) || NONE;
    var att = o("attrition_n") == null ? HIDDEN : num(o("attrition_n"), 0) + " (" + pct(o("attrition_rate")) + ")";
    var cards = [
      [t("card_paired_n"), num(o("paired_n"), 0)],
      [t("card_attrition"), att],
      [t("card_improved"), pct(o("share_improved"))],
      [t("card_records"), num(g("records"), 0)],
      [t("card_period"), labelOf(M.dims.periods, state.period), "card-words"],
      [t("card_threshold", {k: M.meta.threshold}), "k = " + M.meta.threshold]
    ];
    var box = document.getElementById("cards");
    box.innerHTML = "";
    cards.forEach(function (c) {
      var div = document.createElement("div"), v = document.createElement("div"), l = document.createElement("div");
      div.className = "card"; v.className = "card-value" + (c[2] ? " " + c[2] : ""); l.className = "card-label";
      v.textContent = c[1]; l.textContent = c[0];
      if (c[1] === HIDDEN) { v.classList.add("hidden"); v.title = t("hidden_hover"); }
      div.appendChild(v); div.appendChild(l); box.appendChild(div);
    });
  }

  function drawTable(rs) {
    var cols = [
      [t("col_paired_n"), function (o) { return num(o("paired_n"), 0); }],
      [t("col_attrition"), function (o) { return pct(o("attrition_rate")); }],
      [t("col_mean_t0"), function (o) { return num(o("mean_t0"), 2); }],
      [t("col_mean_t1"), function (o) { return num(o("mean_t1"), 2); }],
      [t("col_change"), function (o) { return num(o("mean_change"), 2); }],
      [t("col_change_ci"), function (o) {
        return o("change_ci_low") == null || o("change_ci_high") == null ? HIDDEN
          : num(o("change_ci_low"), 2) + " – " + num(o("change_ci_high"), 2);
      }],
      [t("col_improved"), function (o) { return pct(o("share_improved")); }],
      [t("col_unchanged"), function (o) { return pct(o("share_unchanged")); }],
      [t("col_deteriorated"), function (o) { return pct(o("share_deteriorated")); }]
    ];
    var head = "<tr><th scope=\"col\">" + escapeHtml(t("col_group")) + "</th>" +
      cols.map(function (c) { return "<th scope=\"col\">" + escapeHtml(c[0]) + "</th>"; }).join("") + "</tr>";
    var body = rs.map(function (r) {
      if (r.header) {
        return "<tr class=\"group\"><th scope=\"rowgroup\" colspan=\"" + (cols.length + 1) + "\">" +
               escapeHtml(r.label.replace(/<\/?b>/g, "")) + "</th></tr>";
      }
      var o = outcome(r) || NONE;
      return "<tr" + (r.total ? " class=\"total\"" : "") + "><th scope=\"row\">" + escapeHtml(r.label) + "</th>" +
        cols.map(function (c) {
          var v = c[1](o);
          return v === HIDDEN ? "<td class=\"hidden\" title=\"" + escapeHtml(t("hidden_hover")) + "\">..</td>"
                              : "<td>" + escapeHtml(v) + "</td>";
        }).join("") + "</tr>";
    }).join("");
    document.getElementById("numbers").innerHTML = "<thead>" + head + "</thead><tbody>" + body + "</tbody>";
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"]/g, function (ch) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[ch]; });
  }

  /* ---- filters ---- */
  function fillSelect(id, options, value, allLabel) {
    var sel = document.getElementById(id);
    if (allLabel) options = [["all", allLabel]].concat(options);
    sel.innerHTML = "";
    options.forEach(function (o) {
      var opt = document.createElement("option");
      opt.value = o[0]; opt.textContent = o[1]; opt.selected = o[0] === value;
      sel.appendChild(opt);
    });
    return sel;
  }
  function summary() {
    return [labelOf(M.dims.periods, state.period),
            state.cat === "all" ? t("all_interventions") : labelOf(M.dims.categories, state.cat),
            state.need === "all" ? t("all_needs") : labelOf(M.dims.needs, state.need),
            instrument().label].join(" · ");
  }

  /* After choosing an intervention, offer only need areas published together with it (and the
     reverse); when none are, the other list holds just "all" and is disabled. */
  function linkFilters(changed) {
    var other = changed === "cat" ? "need" : "cat", id = other === "cat" ? "f-cat" : "f-need";
    var list = other === "cat" ? M.dims.categories : M.dims.needs;
    var ok = state[changed] === "all" ? null : published(other, changed, state[changed]);
    var options = ok ? list.filter(function (o) { return ok[o[0]]; }) : list;
    if (options.every(function (o) { return o[0] !== state[other]; })) state[other] = "all";
    var sel = fillSelect(id, options, state[other], other === "cat" ? t("all_interventions") : t("all_needs"));
    sel.disabled = options.length === 0;
    sel.title = options.length === 0 ? t("not_crossed") : "";
  }

  function render() {
    var rs = rows();
    drawCards(rs);
    drawBeforeAfter(rs);
    drawRci(rs);
    drawGoals(rs);
    drawFunnel();
    drawTrend();
    drawAttrition(rs);
    drawTable(rs);
    document.getElementById("selection").textContent = summary();
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  }

  function init() {
    var dims = M.dims;
    var instruments = dims.instruments.map(function (i) { return [i.code, i.label]; });
    var bind = [
      ["f-period", dims.periods, "period", null],
      ["f-cat", dims.categories, "cat", t("all_interventions")],
      ["f-need", dims.needs, "need", t("all_needs")],
      ["f-instr", instruments, "instr", null]
    ];
    bind.forEach(function (b) {
      var sel = fillSelect(b[0], b[1], state[b[2]], b[3]);
      sel.addEventListener("change", function () {
        state[b[2]] = sel.value;
        if (b[2] === "cat" || b[2] === "need") linkFilters(b[2]);
        render();
      });
    });
    if (instruments.length < 2) document.getElementById("f-instr-box").hidden = true;
    render();
    /* Paper is narrower than the screen: fit the charts to an A4 landscape page while printing. */
    function eachFigure(update) {
      FIGS.forEach(function (id) { Plotly.relayout(document.getElementById("fig-" + id), update()); });
    }
    window.addEventListener("beforeprint", function () { eachFigure(function () { return {width: PRINT_WIDTH}; }); });
    window.addEventListener("afterprint", function () { eachFigure(function () { return {width: null, autosize: true}; }); });
    document.body.dataset.ready = "1";
  }
  init();
})();
