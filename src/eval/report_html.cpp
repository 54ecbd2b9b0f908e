// The HTML page of `pairrm eval`: one file, inline CSS and SVG, no script and no network, so it opens
// the same in any browser, offline, and can be mailed or attached to a CI run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "eval/eval.h"

namespace pairrm::eval {
namespace {

using Json = nlohmann::ordered_json;

const char* const kColorA = "#4c78a8";
const char* const kColorB = "#f58518";

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// At most `max_bytes` of s, cut on a UTF-8 character boundary, with an ellipsis when cut.
std::string clip(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end) + "…";
}

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string str(const Json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

// Win rate of A per group with its bootstrap interval as whiskers; the dashed line is parity (50 %).
std::string win_rate_chart(const std::vector<std::pair<std::string, const Json*>>& groups) {
  const int label_w = 180, plot_w = 420, row_h = 30, top = 10;
  const int width = label_w + plot_w + 200, height = top + row_h * static_cast<int>(groups.size()) + 34;
  auto x = [&](double v) { return label_w + v * plot_w; };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height << "' viewBox='0 0 "
    << width << ' ' << height << "' role='img' aria-label='win rate of A per category'>";
  const int axis_y = top + row_h * static_cast<int>(groups.size());
  for (int t = 0; t <= 4; ++t) {
    const double v = t / 4.0;
    s << "<line x1='" << x(v) << "' y1='" << top << "' x2='" << x(v) << "' y2='" << axis_y << "' stroke='#ddd'/>"
      << "<text x='" << x(v) << "' y='" << axis_y + 16 << "' text-anchor='middle' class='tick'>" << t * 25
      << " %</text>";
  }
  s << "<line x1='" << x(0.5) << "' y1='" << top - 4 << "' x2='" << x(0.5) << "' y2='" << axis_y
    << "' stroke='#555' stroke-dasharray='4 3'/>";
  for (size_t g = 0; g < groups.size(); ++g) {
    const Json& v = *groups[g].second;
    const double cy = top + row_h * (static_cast<double>(g) + 0.5);
    const double wr = v["win_rate"].get<double>(), lo = v["ci_low"].get<double>(), hi = v["ci_high"].get<double>();
    s << "<text x='" << label_w - 8 << "' y='" << cy + 4 << "' text-anchor='end' class='label'>"
      << escape(clip(groups[g].first, 28)) << "</text>"
      << "<rect x='" << x(0) << "' y='" << cy - 8 << "' width='" << wr * plot_w << "' height='16' fill='" << kColorA
      << "'><title>" << escape(groups[g].first) << ": " << percent(wr) << " %</title></rect>"
      << "<line x1='" << x(lo) << "' y1='" << cy << "' x2='" << x(hi) << "' y2='" << cy
      << "' stroke='#222' stroke-width='1.5'/>"
      << "<line x1='" << x(lo) << "' y1='" << cy - 6 << "' x2='" << x(lo) << "' y2='" << cy + 6 << "' stroke='#222' stroke-width='1.5'/>"
      << "<line x1='" << x(hi) << "' y1='" << cy - 6 << "' x2='" << x(hi) << "' y2='" << cy + 6 << "' stroke='#222' stroke-width='1.5'/>"
      << "<text x='" << label_w + plot_w + 10 << "' y='" << cy + 4 << "' class='value'>" << percent(wr) << " % ["
      << percent(lo) << ", " << percent(hi) << "] n=" << v["n"].get<long>() << "</text>";
  }
  s << "</svg>";
  return s.str();
}

// Scores per bin; bins right of 0 (A preferred) and left of 0 (B preferred) in the systems' colours.
std::string histogram_chart(const Json& h) {
  const auto edges = h["edges"].get<std::vector<double>>();
  const auto counts = h["counts"].get<std::vector<long>>();
  const int left = 50, bottom = 40, top = 10, plot_w = 640, plot_h = 200;
  const int width = left + plot_w + 20, height = top + plot_h + bottom;
  const long max_count = std::max<long>(1, *std::max_element(counts.begin(), counts.end()));
  const double lo = edges.front(), hi = edges.back();
  auto x = [&](double v) { return left + (v - lo) / (hi - lo) * plot_w; };
  auto y = [&](double c) { return top + plot_h - c / static_cast<double>(max_count) * plot_h; };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height << "' viewBox='0 0 "
    << width << ' ' << height << "' role='img' aria-label='histogram of the scores'>";
  for (int t = 0; t <= 4; ++t) {
    const double c = max_count * t / 4.0;
    s << "<line x1='" << left << "' y1='" << y(c) << "' x2='" << left + plot_w << "' y2='" << y(c) << "' stroke='#eee'/>"
      << "<text x='" << left - 6 << "' y='" << y(c) + 4 << "' text-anchor='end' class='tick'>" << fixed(c, c < 10 && max_count < 4 ? 1 : 0)
      << "</text>";
  }
  for (size_t b = 0; b < counts.size(); ++b) {
    const double center = (edges[b] + edges[b + 1]) / 2;
    s << "<rect x='" << x(edges[b]) + 1 << "' y='" << y(static_cast<double>(counts[b])) << "' width='"
      << std::max(0.0, x(edges[b + 1]) - x(edges[b]) - 2) << "' height='" << top + plot_h - y(static_cast<double>(counts[b]))
      << "' fill='" << (center > 0 ? kColorA : kColorB) << "'><title>[" << fixed(edges[b], 2) << ", "
      << fixed(edges[b + 1], 2) << "): " << counts[b] << "</title></rect>";
  }
  const size_t step = std::max<size_t>(1, (edges.size() + 7) / 8);
  const size_t zero = (edges.size() - 1) / 2;  // the edges are symmetric: 0 is the middle one
  for (size_t e = zero % step; e < edges.size(); e += step)
    s << "<text x='" << x(edges[e]) << "' y='" << top + plot_h + 16 << "' text-anchor='middle' class='tick'>"
      << fixed(edges[e], std::fabs(edges[1] - edges[0]) < 1 ? 2 : 1) << "</text>";
  s << "<line x1='" << x(0) << "' y1='" << top << "' x2='" << x(0) << "' y2='" << top + plot_h << "' stroke='#222'/>"
    << "<line x1='" << left << "' y1='" << top + plot_h << "' x2='" << left + plot_w << "' y2='" << top + plot_h
    << "' stroke='#222'/>"
    << "<text x='" << left + plot_w / 2 << "' y='" << height - 4
    << "' text-anchor='middle' class='label'>score = logit(A,B) − logit(B,A)   (right of 0: A preferred)</text></svg>";
  return s.str();
}

std::string stats_table(const Json& r) {
  std::ostringstream s;
  s << "<table class='num'><tr><th></th><th>n</th><th>wins A</th><th>ties</th><th>wins B</th><th>win rate A</th>"
       "<th>interval</th><th>position consistency</th><th>mean score</th></tr>";
  auto row = [&](const std::string& label, const Json& v) {
    s << "<tr><td class='text'>" << escape(label) << "</td><td>" << v["n"].get<long>() << "</td><td>"
      << v["wins"].get<long>() << "</td><td>" << v["ties"].get<long>() << "</td><td>" << v["losses"].get<long>()
      << "</td><td>" << percent(v["win_rate"].get<double>()) << " %</td><td>[" << percent(v["ci_low"].get<double>())
      << ", " << percent(v["ci_high"].get<double>()) << "]</td><td>" << percent(v["position_consistency"].get<double>())
      << " %</td><td>" << fixed(v["mean_score"].get<double>(), 3) << "</td></tr>";
  };
  row("overall", r["overall"]);
  for (const auto& c : r["categories"]) row(c["category"].get<std::string>(), c);
  s << "</table>";
  return s.str();
}

std::string prompt_table(const Json& rows, const std::string& empty) {
  if (rows.empty()) return "<p class='note'>" + escape(empty) + "</p>";
  std::ostringstream s;
  s << "<table class='prompts'><tr><th>id</th><th>prompt</th><th>answer A</th><th>answer B</th>"
       "<th>logit(A,B)</th><th>logit(B,A)</th><th>score</th></tr>";
  for (const auto& p : rows) {
    s << "<tr><td>" << escape(clip(str(p["id"]), 40)) << "</td><td class='text'>" << escape(clip(str(p["prompt"]), 400))
      << "</td><td class='text'>" << escape(clip(str(p["a"]), 400)) << "</td><td class='text'>"
      << escape(clip(str(p["b"]), 400)) << "</td><td>" << fixed(p["logit_ab"].get<double>(), 3) << "</td><td>"
      << fixed(p["logit_ba"].get<double>(), 3) << "</td><td>" << fixed(p["score"].get<double>(), 3) << "</td></tr>";
  }
  s << "</table>";
  return s.str();
}

}  // namespace

std::string html_report(const nlohmann::ordered_json& r) {
  const std::string a = r["systems"]["a"].get<std::string>(), b = r["systems"]["b"].get<std::string>();
  const Json& all = r["overall"];
  const Json& st = r["settings"];
  std::vector<std::pair<std::string, const Json*>> groups{{"overall", &all}};
  for (const auto& c : r["categories"]) groups.push_back({c["category"].get<std::string>(), &c});

  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
       "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    << "<title>PairRM evaluation: " << escape(a) << " vs " << escape(b) << "</title><style>"
       "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}"
       "h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}"
       ".sub,.note{color:#666;font-size:13px}.cards{display:flex;gap:16px;flex-wrap:wrap;margin:16px 0}"
       ".card{border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:170px}"
       ".card .big{font-size:28px;font-weight:600}.card .what{color:#666;font-size:13px}"
       "table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid #eee;padding:4px 8px;vertical-align:top}"
       "th{background:#f6f6f6;text-align:left}table.num td{text-align:right}td.text{text-align:left;white-space:pre-wrap;"
       "max-width:320px;overflow-wrap:anywhere}.tick{font-size:11px;fill:#555}.label{font-size:13px;fill:#222}"
       ".value{font-size:12px;fill:#222}.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}"
       "</style></head><body>\n";
  s << "<h1>" << escape(a) << " vs " << escape(b) << "</h1><div class='sub'>PairRM evaluation of "
    << all["n"].get<long>() << " prompts";
  if (!r["model"].get<std::string>().empty()) s << " · model " << escape(r["model"].get<std::string>());
  s << " · score = logit(A,B) − logit(B,A) (position-debiased) · tie when |score| ≤ "
    << fixed(st["tie_threshold"].get<double>(), 3) << " · " << percent(st["confidence"].get<double>())
    << " % bootstrap interval, " << st["bootstrap"].get<int>() << " resamples, seed " << st["seed"].get<uint64_t>()
    << "</div>\n";
  s << "<div class='cards'>"
    << "<div class='card'><div class='what'>win rate of " << escape(a) << "</div><div class='big' id='win-rate'>"
    << percent(all["win_rate"].get<double>()) << " %</div><div class='what'>[" << percent(all["ci_low"].get<double>()) << ", "
    << percent(all["ci_high"].get<double>()) << "]</div></div>"
    << "<div class='card'><div class='what'>wins · ties · losses of " << escape(a) << "</div><div class='big'>"
    << all["wins"].get<long>() << " · " << all["ties"].get<long>() << " · " << all["losses"].get<long>() << "</div></div>"
    << "<div class='card'><div class='what'>position consistency</div><div class='big'>"
    << percent(all["position_consistency"].get<double>()) << " %</div><div class='what'>both passes prefer the same answer</div></div>"
    << "<div class='card'><div class='what'>mean score</div><div class='big'>" << fixed(all["mean_score"].get<double>(), 3)
    << "</div></div></div>\n";
  s << "<h2>Win rate of " << escape(a) << "</h2>" << win_rate_chart(groups)
    << "<div class='note'>Bars: win rate of " << escape(a) << " (ties count half); whiskers: the bootstrap interval; "
       "dashed line: parity.</div>\n";
  s << "<h2>Scores</h2>" << histogram_chart(r["histogram"]) << "<div class='note'><span class='key' style='background:"
    << kColorA << "'></span>" << escape(a) << " preferred<span class='key' style='background:" << kColorB << "'></span>"
    << escape(b) << " preferred</div>\n";
  s << "<h2>Numbers</h2>" << stats_table(r) << "\n";
  s << "<h2>Most confident position disagreements</h2><div class='note'>The two passes contradict each other "
       "(each prefers the answer in the same slot) and both are confident: a sign of position bias or of answers "
       "the model cannot separate.</div>"
    << prompt_table(r["most_confident_position_disagreements"], "None: every prompt's two passes agree.") << "\n";
  s << "<h2>Largest wins of " << escape(a) << "</h2>" << prompt_table(r["largest_wins_a"], "No prompts.") << "\n";
  s << "<h2>Largest wins of " << escape(b) << "</h2>" << prompt_table(r["largest_wins_b"], "No prompts.") << "\n";
  if (!r["skipped"].empty()) {
    s << "<h2>Skipped input</h2><table><tr><th>where</th><th>why</th></tr>";
    for (const auto& p : r["skipped"])
      s << "<tr><td>" << escape(p["where"].get<std::string>()) << "</td><td class='text'>"
        << escape(clip(p["error"].get<std::string>(), 400)) << "</td></tr>";
    s << "</table>\n";
  }
  s << "<p class='note'>Made by pairrm eval. Every number, and each prompt's logits, are in the JSON report "
       "(--json).</p></body></html>\n";
  return s.str();
}

}  // namespace pairrm::eval
