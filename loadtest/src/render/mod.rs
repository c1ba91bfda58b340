//! A comparison's document turned into what people read: [`text`] tables,
//! the [`html`] page, the SVG [`charts`]; and `wsload report`, which reads
//! documents back and re-renders one or compares two ([`diff`]). Below the
//! charts, [`axis`]: their keys and labels.

mod axis;
pub mod capacity;
pub mod charts;
pub mod diff;
pub mod html;
pub mod text;

use std::io;
use std::path::Path;

use crate::cli::compare::ReportArgs;
use crate::output;
use crate::results::{Document, FORMAT};

/// Where a document goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Files<'a> {
    /// The JSON document (`-`: stdout).
    pub json: Option<&'a Path>,
    /// The HTML page.
    pub html: Option<&'a Path>,
    /// The directory of SVG charts.
    pub svg: Option<&'a Path>,
}

/// Writes `d` to `files`; `changes` (a heading and a table) goes at the
/// top of the page. Reports failures on stderr; returns whether all worked.
pub fn write(d: &Document, files: Files<'_>, changes: Option<(&str, &text::Table)>) -> bool {
    let mut ok = true;
    if let Some(p) = files.json {
        ok &= output::write_to(p, |w| {
            serde_json::to_writer_pretty(&mut *w, d).map_err(io::Error::other)?;
            writeln!(w)
        });
    }
    if files.html.is_none() && files.svg.is_none() {
        return ok;
    }
    let charts = match all_charts(d) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wsload: {e}");
            return false;
        }
    };
    if let Some(p) = files.html {
        let page = html::page(d, &charts, changes);
        ok &= output::write_to(p, |w| w.write_all(page.as_bytes()));
    }
    if let Some(dir) = files.svg {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("wsload: cannot create {}: {e}", dir.display());
            return false;
        }
        for c in &charts {
            let path = dir.join(format!("{}.svg", c.file));
            ok &= output::write_to(&path, |w| w.write_all(c.svg.as_bytes()));
        }
    }
    ok
}

/// Reads a document `compare --json` wrote.
pub fn load(path: &Path) -> Result<Document, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{shown} is not JSON: {e}"))?;
    let format = v["format"].as_str().unwrap_or("");
    if format != FORMAT {
        return Err(format!(
            "{shown} is not a `wsload compare --json` document (format {format:?}, expected {FORMAT:?})"
        ));
    }
    serde_json::from_value(v).map_err(|e| format!("{shown}: {e}"))
}

/// `wsload report`: prints one document's tables, or the changes from A
/// to B; writes the HTML page and charts if asked. Returns whether it worked.
pub fn report(args: &ReportArgs) -> bool {
    let files = Files {
        json: None,
        html: args.html.as_deref(),
        svg: args.svg.as_deref(),
    };
    let a = match load(&args.a) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("wsload report: {e}");
            return false;
        }
    };
    let Some(b_path) = &args.b else {
        print!("{}", text::document(&a));
        return write(&a, files, None);
    };
    let b = match load(b_path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("wsload report: {e}");
            return false;
        }
    };
    let changes = diff::changes(&a, &b);
    let table = diff::table(&changes);
    let flagged = changes.iter().filter(|c| c.changed).count();
    println!("A: {} (started {})", args.a.display(), a.started);
    println!("B: {} (started {})", b_path.display(), b.started);
    for c in diff::caveats(&a, &b) {
        println!("note: {c}");
    }
    print!("{}", text::columns(&table, "  "));
    println!(
        "{flagged} of {} figures changed beyond the spread of their rounds",
        changes.len()
    );
    let heading = format!(
        "Changes from A ({}) to B ({}): {flagged} beyond the spread of the rounds",
        a.started, b.started
    );
    write(&b, files, Some((&heading, &table)))
}

/// Every chart of the document, summary first.
fn all_charts(d: &Document) -> Result<Vec<charts::Chart>, String> {
    let mut v = Vec::new();
    v.extend(charts::summary(d)?);
    for s in &d.scenarios {
        v.extend(charts::cost(s)?);
        v.extend(charts::latency(s)?);
        v.extend(charts::throughput(s)?);
        v.extend(capacity::compared(s)?);
    }
    Ok(v)
}
