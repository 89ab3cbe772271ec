//! `localbuild list [-b FILE] [-s DIR] [--batch]`: a compact table, like `act --list`.
//!
//! Without `--batch`: one row per command of the four buildspec phases (`finally` commands
//! marked), an undefined phase as one `-` row. With `--batch`: one row per build of the
//! `batch` section, from the same expansion as `plan` and `run --batch`. The buildspec is found
//! and validated exactly as `plan` does it ([`super::plan::load`]).

use super::error::CliError;
use super::{ListArgs, exit};
use localbuild_buildspec::plan::{Plan, PlanBatch};

/// Longest command text shown in a cell (the first line of the command).
const MAX_COMMAND: usize = 100;

pub fn run(args: &ListArgs) -> Result<u8, CliError> {
    let plan = super::plan::load(args.buildspec.as_deref(), &args.source)?;
    let text = if args.batch {
        let Some(batch) = &plan.batch else {
            return Err(CliError::InFile {
                file: plan.buildspec,
                message: "the buildspec has no 'batch' section".into(),
            });
        };
        tasks(batch)
    } else {
        phases(&plan)
    };
    super::out::print(text)?;
    Ok(exit::SUCCESS)
}

/// The phases table; a last line names the batch when there is one.
pub fn phases(plan: &Plan) -> String {
    let mut rows = vec![row(["PHASE", "STEP", "COMMAND"])];
    for p in &plan.phases {
        if p.commands.is_empty() && p.finally.is_empty() {
            let what = if p.defined {
                "(no commands)"
            } else {
                "(not defined)"
            };
            rows.push(row([&p.name, "-", what]));
            continue;
        }
        for (i, c) in p.commands.iter().enumerate() {
            rows.push(vec![p.name.clone(), (i + 1).to_string(), cell(c)]);
        }
        for (i, c) in p.finally.iter().enumerate() {
            rows.push(vec![p.name.clone(), format!("finally {}", i + 1), cell(c)]);
        }
    }
    let mut out = table(&rows);
    if let Some(b) = &plan.batch {
        out.push_str(&format!(
            "\nbatch: {}, {} build(s); `localbuild list --batch` lists them\n",
            b.kind,
            b.tasks.len()
        ));
    }
    out
}

/// The batch table: identifier, dependencies, buildspec, image, the rest.
pub fn tasks(batch: &PlanBatch) -> String {
    let mut rows = vec![row([
        "IDENTIFIER",
        "DEPEND-ON",
        "BUILDSPEC",
        "IMAGE",
        "SETTINGS",
    ])];
    let dash = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".into());
    for t in &batch.tasks {
        let mut settings = vec![];
        if let Some(c) = &t.compute_type {
            settings.push(format!("compute-type={c}"));
        }
        if let Some(e) = &t.env_type {
            settings.push(format!("type={e}"));
        }
        if let Some(p) = t.privileged_mode {
            settings.push(format!("privileged={p}"));
        }
        if t.ignore_failure {
            settings.push("ignore-failure".into());
        }
        for v in &t.variables {
            settings.push(format!("{}={}", v.name, v.value));
        }
        let depend_on = if t.depend_on.is_empty() {
            "-".to_owned()
        } else {
            t.depend_on.join(",")
        };
        rows.push(vec![
            t.identifier.clone(),
            depend_on,
            dash(t.buildspec.as_ref()),
            dash(t.image.as_ref()),
            if settings.is_empty() {
                "-".into()
            } else {
                cell(&settings.join(" "))
            },
        ]);
    }
    let mut out = format!(
        "batch: {} (fast-fail {})\n",
        batch.kind,
        if batch.fast_fail { "yes" } else { "no" }
    );
    out.push_str(&table(&rows));
    for n in &batch.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// A command as one cell: its first line, `…` when there is more or it is too long.
fn cell(text: &str) -> String {
    let text = text.trim_end_matches('\n');
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let more = lines.next().is_some();
    let mut s: String = first.chars().take(MAX_COMMAND).collect();
    if more || first.chars().count() > MAX_COMMAND {
        s.push_str(" …");
    }
    s
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_commands_show_their_first_line() {
        assert_eq!(cell("echo a\necho b\n"), "echo a …");
        assert_eq!(cell("make"), "make");
        let long = "x".repeat(150);
        assert_eq!(cell(&long).chars().count(), MAX_COMMAND + 2);
    }

    #[test]
    fn columns_line_up() {
        let t = table(&[row(["A", "BB", "C"]), row(["AAA", "B", "CCCC"])]);
        assert_eq!(t, "A    BB  C\nAAA  B   CCCC\n");
    }
}
