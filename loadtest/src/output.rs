//! Where reports go: text to stdout (stderr when `--json -` takes stdout),
//! files for --json, --hgrm and --csv.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value;

/// Whether `--json` asked for stdout.
pub fn is_stdout(json: Option<&Path>) -> bool {
    json == Some(Path::new("-"))
}

/// Prints the human-readable report, out of the JSON's way.
pub fn print_text(text: &str, json_to_stdout: bool) {
    if json_to_stdout {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

/// Writes `write`'s output to `path` (`-` is stdout); reports a failure on
/// stderr and returns whether it worked.
pub fn write_to(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> bool {
    let result = if path == Path::new("-") {
        let mut out = io::stdout().lock();
        write(&mut out).and_then(|()| out.flush())
    } else {
        File::create(path).and_then(|f| {
            let mut w = BufWriter::new(f);
            write(&mut w)?;
            w.flush()
        })
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            eprintln!("wsload: cannot write {}: {e}", path.display());
            false
        }
    }
}

/// Writes one JSON object and a newline.
pub fn write_json(path: &Path, v: &Value) -> bool {
    write_to(path, |w| {
        serde_json::to_writer_pretty(&mut *w, v).map_err(io::Error::other)?;
        writeln!(w)
    })
}
