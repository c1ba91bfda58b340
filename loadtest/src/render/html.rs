//! The HTML report: one self-contained page (inline CSS and SVG, no
//! script, nothing fetched) with the setup, each scenario's table, notes
//! and charts, and how to read them.

use std::fmt::Write as _;

use super::charts::Chart;
use super::text::{self, Table};
use crate::results::Document;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th.name, td.name { text-align: left; position: sticky; left: 0; background: #fff; }
th { background: #f4f4f4; white-space: normal; vertical-align: bottom; }
th.name { background: #f4f4f4; }
th.ratio, td.ratio { background: #f3f7ff; font-weight: 600; }
.range { display: block; font-size: 0.82em; color: #666; }
.failed { font-weight: bold; color: #a00; }
.failure pre { background: #fff4f4; border-left: 3px solid #a00; padding: 0.4em 0.8em; overflow-x: auto; }
table.setup td { text-align: left; white-space: normal; }
code { font-size: 0.92em; }
.notes li { color: #8a4b00; }
.changed { font-weight: bold; color: #a00; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
";

/// A table. Ratio columns (headed `… ÷ NAME`) are shaded as the
/// headline; a `median (min–max)` cell puts its range on a line of its
/// own, so columns stay narrow enough for the page.
fn table_html(t: &Table, o: &mut String, class: &str) {
    let _ = write!(
        o,
        "<div class=\"scroll\"><table class=\"{class}\"><thead><tr>"
    );
    let ratio: Vec<bool> = t.header.iter().map(|h| h.contains(" ÷ ")).collect();
    let class_of = |i: usize| {
        if i < t.names {
            " class=\"name\""
        } else if ratio.get(i).copied().unwrap_or(false) {
            " class=\"ratio\""
        } else {
            ""
        }
    };
    for (i, h) in t.header.iter().enumerate() {
        let _ = write!(o, "<th{}>{}</th>", class_of(i), escape(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for row in &t.rows {
        o.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let cls = if c.ends_with("CHANGED") {
                " class=\"changed\""
            } else if i < t.names && c.ends_with(text::FAILED) {
                " class=\"name failed\""
            } else {
                class_of(i)
            };
            let cell = match c.split_once(" (").filter(|_| c.ends_with(')')) {
                Some((median, range)) if i >= t.names => format!(
                    "{}<span class=\"range\">({}</span>",
                    escape(median),
                    escape(range)
                ),
                _ => escape(c),
            };
            let _ = write!(o, "<td{cls}>{cell}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n");
}

fn figure(c: &Chart, o: &mut String) {
    let _ = writeln!(
        o,
        "<figure data-chart=\"{}\">{}<figcaption>{}</figcaption></figure>",
        escape(&c.file),
        c.svg,
        escape(&c.title)
    );
}

const READING: &str = "
<h2>How to read this report</h2>
<ul>
<li>Each server ran afresh in every round, rounds interleaved A B A B, so drift on the machine
hits every server alike. Figures are medians over rounds; min–max in parentheses and as whiskers.</li>
<li>The figure that holds on a shared machine is the <b>server's CPU time per message</b>
(broadcast: per delivery), user + system from <code>/proc/PID/stat</code> over the measured window:
wall-clock rates swing with the machine's other work, CPU per message much less.
For idle connections the cost is the server's memory (RSS) growth per connection.</li>
<li>Ratios are to the first server, in the shaded columns first: below 1× is cheaper (cost) or slower (rate).</li>
<li>The latency spectrum plots latency against percentile on a log axis of 1/(1 − p), as HdrHistogram
does: the tail gets the room. One line per round.</li>
<li>A capacity scenario (<code>rate --find-max</code>) ranks servers by the highest rate each held with
p99 under the bound and no error; its other figures are those of the run at that rate, and its chart
plots each step's p99 against the rate offered (× a step that failed).</li>
<li>A <i>noisy</i> note means one server's rounds disagree by more than 20%: run more rounds or on a quieter machine.
A <i>wsload was the limit</i> note means the load tool itself was saturated: the rate is a floor.</li>
</ul>
";

/// The page: the document's setup, tables and charts; `changes`, when
/// comparing two documents, comes first.
pub fn page(d: &Document, charts: &[Chart], changes: Option<(&str, &Table)>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>wsload compare, {}</title>\n<style>{STYLE}</style></head>\n<body>\n",
        escape(&d.started)
    );
    let _ = writeln!(o, "<h1>wsload compare</h1>");
    o.push_str("<table class=\"setup\"><tbody>\n");
    for line in text::setup_lines(d) {
        let (k, v) = line.split_once(": ").unwrap_or(("", &line));
        let _ = writeln!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
    }
    o.push_str("</tbody></table>\n");
    if let Some((heading, t)) = changes {
        let _ = writeln!(o, "<h2>{}</h2>", escape(heading));
        table_html(t, &mut o, "changes");
    }
    if let Some(c) = charts.iter().find(|c| c.file == "summary") {
        o.push_str("<h2>Summary</h2>\n");
        figure(c, &mut o);
    }
    for s in &d.scenarios {
        let _ = writeln!(
            o,
            "<section id=\"scenario-{}\">\n<h2>{}</h2>\n<p>{}</p>",
            escape(&s.name),
            escape(&s.name),
            escape(&text::scenario_line(s))
        );
        table_html(&text::table(s), &mut o, "results");
        for (head, output) in text::failures(s) {
            let _ = write!(
                o,
                "<div class=\"failure\"><p class=\"failed\">{}</p>",
                escape(&head)
            );
            if !output.is_empty() {
                let _ = write!(
                    o,
                    "<p>Its output ends:</p><pre>{}</pre>",
                    escape(&output.join("\n"))
                );
            }
            o.push_str("</div>\n");
        }
        let notes: Vec<String> = s
            .servers
            .iter()
            .flat_map(|r| r.notes.iter().map(move |n| format!("{}: {n}", r.name)))
            .collect();
        if !notes.is_empty() {
            o.push_str("<ul class=\"notes\">\n");
            for n in notes {
                let _ = writeln!(o, "<li>{}</li>", escape(&n));
            }
            o.push_str("</ul>\n");
        }
        let prefix = format!("{}-", s.name);
        for c in charts.iter().filter(|c| {
            c.file
                .strip_prefix(&prefix)
                .is_some_and(|k| ["capacity", "cost", "latency", "throughput"].contains(&k))
        }) {
            figure(c, &mut o);
        }
        o.push_str("</section>\n");
    }
    o.push_str(READING);
    let _ = writeln!(
        o,
        "<p><small>Command: <code>{}</code></small></p>\n</body></html>",
        escape(&d.command.join(" "))
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
