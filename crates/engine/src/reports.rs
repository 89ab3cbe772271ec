//! Test and coverage report parsing, and CodeBuild-shaped report summaries (no I/O).
//!
//! [`parse`] turns one file of a report group's `file-format` into test cases or coverage
//! counts; [`Report`] aggregates a group's files into the shape of CodeBuild's report API
//! (`testSummary` / `codeCoverageSummary`), serialised as JSON for `-r DIR` and rendered by the
//! CLI summary. A malformed file is an `Err(reason)` for the caller to turn into a warning.

use crate::buildspec::ReportFormat;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A test case's status, as CodeBuild's `TestCase.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TestStatus {
    Succeeded,
    Failed,
    Error,
    Skipped,
    Unknown,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Succeeded => "SUCCEEDED",
            TestStatus::Failed => "FAILED",
            TestStatus::Error => "ERROR",
            TestStatus::Skipped => "SKIPPED",
            TestStatus::Unknown => "UNKNOWN",
        }
    }
}

/// One test case (CodeBuild's `TestCase`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCase {
    pub name: String,
    pub prefix: String,
    pub status: TestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_in_nano_seconds: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub test_raw_data_path: String,
}

/// Line and branch counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub lines_covered: u64,
    pub lines_missed: u64,
    pub branches_covered: u64,
    pub branches_missed: u64,
}

/// What one file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Tests(Vec<TestCase>),
    Coverage(Coverage),
}

/// Parse one report file.
pub fn parse(format: ReportFormat, bytes: &[u8]) -> Result<Parsed, String> {
    match format {
        ReportFormat::CucumberJson => cucumber(bytes).map(Parsed::Tests),
        ReportFormat::SimpleCov => simplecov(bytes).map(Parsed::Coverage),
        _ => {
            let root = xml(bytes)?;
            match format {
                ReportFormat::JunitXml => junit(&root),
                ReportFormat::NunitXml => nunit2(&root),
                ReportFormat::Nunit3Xml => nunit3(&root),
                ReportFormat::TestNgXml => testng(&root),
                ReportFormat::VisualStudioTrx => trx(&root),
                ReportFormat::CoberturaXml => cobertura(&root).map(Parsed::Coverage),
                ReportFormat::JacocoXml => jacoco(&root).map(Parsed::Coverage),
                ReportFormat::CloverXml => clover(&root).map(Parsed::Coverage),
                ReportFormat::CucumberJson | ReportFormat::SimpleCov => unreachable!(),
            }
        }
    }
}

// ---------- a small XML tree ----------

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn each<'a>(&'a self, name: &str, out: &mut Vec<&'a Node>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.each(name, out);
        }
    }
    fn all<'a>(&'a self, name: &str) -> Vec<&'a Node> {
        let mut v = vec![];
        if self.name == name {
            v.push(self);
        }
        self.each(name, &mut v);
        v
    }
    fn num(&self, key: &str) -> Option<u64> {
        self.attr(key)?.trim().parse::<f64>().ok().map(|f| f as u64)
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_owned(),
        None => s.into_owned(),
    }
}

fn unescape(s: &str) -> String {
    match quick_xml::escape::unescape(s) {
        Ok(c) => c.into_owned(),
        Err(_) => s.to_owned(),
    }
}

fn xml(bytes: &[u8]) -> Result<Node, String> {
    use quick_xml::events::{BytesStart, Event};
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let start = |e: &BytesStart| -> Result<Node, String> {
        let mut attrs = vec![];
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            attrs.push((
                local(a.key.as_ref()),
                unescape(&String::from_utf8_lossy(&a.value)),
            ));
        }
        Ok(Node {
            name: local(e.name().as_ref()),
            attrs,
            ..Node::default()
        })
    };
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("invalid XML at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => {
                let n = start(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err("invalid XML: unbalanced end tag".into());
                }
                let n = stack.pop().unwrap_or_default();
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&unescape(&String::from_utf8_lossy(&t)));
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err("invalid XML: unexpected end of file".into());
    }
    let mut doc = stack.pop().unwrap_or_default();
    doc.children
        .pop()
        .filter(|_| doc.children.is_empty())
        .ok_or_else(|| "invalid XML: no root element".to_owned())
}

fn expect_root(root: &Node, names: &[&str]) -> Result<(), String> {
    if names.contains(&root.name.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "unexpected root element <{}> (expected <{}>)",
            root.name,
            names.join("> or <")
        ))
    }
}

fn secs_ns(s: Option<&str>) -> u64 {
    s.and_then(|s| s.trim().parse::<f64>().ok())
        .map_or(0, |f| (f * 1e9).max(0.0) as u64)
}

fn message(n: &Node) -> Option<String> {
    n.attr("message")
        .map(str::to_owned)
        .or_else(|| n.child("message").map(|m| m.text.trim().to_owned()))
        .or_else(|| Some(n.text.trim().to_owned()))
        .filter(|m| !m.is_empty())
}

// ---------- test formats ----------

fn junit(root: &Node) -> Result<Parsed, String> {
    expect_root(root, &["testsuites", "testsuite"])?;
    let mut cases = vec![];
    for suite in root.all("testsuite") {
        for tc in suite.children.iter().filter(|c| c.name == "testcase") {
            let (status, msg) = if let Some(f) = tc.child("failure") {
                (TestStatus::Failed, message(f))
            } else if let Some(e) = tc.child("error") {
                (TestStatus::Error, message(e))
            } else if let Some(s) = tc.child("skipped") {
                (TestStatus::Skipped, message(s))
            } else {
                (TestStatus::Succeeded, None)
            };
            cases.push(TestCase {
                name: tc.attr("name").unwrap_or_default().to_owned(),
                prefix: tc
                    .attr("classname")
                    .or(suite.attr("name"))
                    .unwrap_or_default()
                    .to_owned(),
                status,
                message: msg,
                duration_in_nano_seconds: secs_ns(tc.attr("time")),
                test_raw_data_path: String::new(),
            });
        }
    }
    Ok(Parsed::Tests(cases))
}

fn nunit2(root: &Node) -> Result<Parsed, String> {
    expect_root(root, &["test-results"])?;
    let cases = root
        .all("test-case")
        .into_iter()
        .map(|tc| {
            let result = tc.attr("result").unwrap_or_default();
            let status = if tc.attr("executed") == Some("False") {
                TestStatus::Skipped
            } else {
                match result {
                    "Success" => TestStatus::Succeeded,
                    "Failure" => TestStatus::Failed,
                    "Error" => TestStatus::Error,
                    "Ignored" | "Skipped" | "NotRunnable" => TestStatus::Skipped,
                    _ => match tc.attr("success") {
                        Some("True") => TestStatus::Succeeded,
                        Some("False") => TestStatus::Failed,
                        _ => TestStatus::Unknown,
                    },
                }
            };
            let msg = tc.child("failure").or(tc.child("reason")).and_then(message);
            let full = tc.attr("name").unwrap_or_default();
            let (prefix, name) = full.rsplit_once('.').unwrap_or(("", full));
            TestCase {
                name: name.to_owned(),
                prefix: prefix.to_owned(),
                status,
                message: msg,
                duration_in_nano_seconds: secs_ns(tc.attr("time")),
                test_raw_data_path: String::new(),
            }
        })
        .collect();
    Ok(Parsed::Tests(cases))
}

fn nunit3(root: &Node) -> Result<Parsed, String> {
    expect_root(root, &["test-run"])?;
    let cases = root
        .all("test-case")
        .into_iter()
        .map(|tc| {
            let status = match (tc.attr("result"), tc.attr("label")) {
                (Some("Passed"), _) => TestStatus::Succeeded,
                (Some("Failed"), Some("Error")) => TestStatus::Error,
                (Some("Failed"), _) => TestStatus::Failed,
                (Some("Skipped"), _) => TestStatus::Skipped,
                _ => TestStatus::Unknown,
            };
            let msg = tc.child("failure").or(tc.child("reason")).and_then(message);
            TestCase {
                name: tc.attr("name").unwrap_or_default().to_owned(),
                prefix: tc.attr("classname").unwrap_or_default().to_owned(),
                status,
                message: msg,
                duration_in_nano_seconds: secs_ns(tc.attr("duration")),
                test_raw_data_path: String::new(),
            }
        })
        .collect();
    Ok(Parsed::Tests(cases))
}

fn testng(root: &Node) -> Result<Parsed, String> {
    expect_root(root, &["testng-results"])?;
    let mut cases = vec![];
    for class in root.all("class") {
        for m in class.children.iter().filter(|c| c.name == "test-method") {
            if m.attr("is-config") == Some("true") {
                continue;
            }
            let status = match m.attr("status") {
                Some("PASS") => TestStatus::Succeeded,
                Some("FAIL") => TestStatus::Failed,
                Some("SKIP") => TestStatus::Skipped,
                _ => TestStatus::Unknown,
            };
            let msg = m.child("exception").and_then(|e| {
                e.child("message")
                    .map(|x| x.text.trim().to_owned())
                    .or_else(|| e.attr("class").map(str::to_owned))
            });
            cases.push(TestCase {
                name: m.attr("name").unwrap_or_default().to_owned(),
                prefix: class.attr("name").unwrap_or_default().to_owned(),
                status,
                message: msg,
                duration_in_nano_seconds: m
                    .num("duration-ms")
                    .map_or(0, |ms| ms.saturating_mul(1_000_000)),
                test_raw_data_path: String::new(),
            });
        }
    }
    Ok(Parsed::Tests(cases))
}

/// `hh:mm:ss.fffffff` → nanoseconds.
fn timespan_ns(s: &str) -> u64 {
    let mut total = 0.0;
    for part in s.split(':') {
        total = total * 60.0 + part.trim().parse::<f64>().unwrap_or(0.0);
    }
    (total * 1e9).max(0.0) as u64
}

fn trx(root: &Node) -> Result<Parsed, String> {
    expect_root(root, &["TestRun"])?;
    let cases = root
        .all("UnitTestResult")
        .into_iter()
        .map(|r| {
            let status = match r.attr("outcome") {
                Some("Passed") => TestStatus::Succeeded,
                Some("Failed") => TestStatus::Failed,
                Some("Error") | Some("Timeout") | Some("Aborted") => TestStatus::Error,
                Some("NotExecuted") | Some("Inconclusive") => TestStatus::Skipped,
                _ => TestStatus::Unknown,
            };
            let msg = r
                .child("Output")
                .and_then(|o| o.child("ErrorInfo"))
                .and_then(|e| e.child("Message"))
                .map(|m| m.text.trim().to_owned())
                .filter(|m| !m.is_empty());
            TestCase {
                name: r.attr("testName").unwrap_or_default().to_owned(),
                prefix: String::new(),
                status,
                message: msg,
                duration_in_nano_seconds: r.attr("duration").map_or(0, timespan_ns),
                test_raw_data_path: String::new(),
            }
        })
        .collect();
    Ok(Parsed::Tests(cases))
}

fn cucumber(bytes: &[u8]) -> Result<Vec<TestCase>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let features = v.as_array().ok_or("expected a JSON array of features")?;
    let mut cases = vec![];
    for f in features {
        let fname = f["name"].as_str().unwrap_or_default();
        for el in f["elements"].as_array().into_iter().flatten() {
            if el["type"].as_str() == Some("background") {
                continue;
            }
            let mut status = TestStatus::Succeeded;
            let mut msg = None;
            let mut dur = 0u64;
            for step in el["steps"].as_array().into_iter().flatten() {
                let r = &step["result"];
                dur = dur.saturating_add(r["duration"].as_u64().unwrap_or(0));
                match r["status"].as_str().unwrap_or("unknown") {
                    "passed" => {}
                    "failed" => {
                        status = TestStatus::Failed;
                        if msg.is_none() {
                            msg = r["error_message"].as_str().map(str::to_owned);
                        }
                    }
                    "skipped" | "pending" | "undefined" => {
                        if status == TestStatus::Succeeded {
                            status = TestStatus::Skipped;
                        }
                    }
                    _ => {
                        if status == TestStatus::Succeeded {
                            status = TestStatus::Unknown;
                        }
                    }
                }
            }
            cases.push(TestCase {
                name: el["name"].as_str().unwrap_or_default().to_owned(),
                prefix: fname.to_owned(),
                status,
                message: msg,
                duration_in_nano_seconds: dur,
                test_raw_data_path: String::new(),
            });
        }
    }
    Ok(cases)
}

// ---------- coverage formats ----------

fn cobertura(root: &Node) -> Result<Coverage, String> {
    expect_root(root, &["coverage"])?;
    if let (Some(lc), Some(lv)) = (root.num("lines-covered"), root.num("lines-valid")) {
        let bc = root.num("branches-covered").unwrap_or(0);
        let bv = root.num("branches-valid").unwrap_or(0);
        return Ok(Coverage {
            lines_covered: lc,
            lines_missed: lv.saturating_sub(lc),
            branches_covered: bc,
            branches_missed: bv.saturating_sub(bc),
        });
    }
    let mut c = Coverage::default();
    for l in root.all("line") {
        if l.num("hits").unwrap_or(0) > 0 {
            c.lines_covered += 1;
        } else {
            c.lines_missed += 1;
        }
    }
    Ok(c)
}

fn jacoco(root: &Node) -> Result<Coverage, String> {
    expect_root(root, &["report"])?;
    let mut c = Coverage::default();
    for counter in root.children.iter().filter(|n| n.name == "counter") {
        let missed = counter.num("missed").unwrap_or(0);
        let covered = counter.num("covered").unwrap_or(0);
        match counter.attr("type") {
            Some("LINE") => (c.lines_covered, c.lines_missed) = (covered, missed),
            Some("BRANCH") => (c.branches_covered, c.branches_missed) = (covered, missed),
            _ => {}
        }
    }
    Ok(c)
}

fn clover(root: &Node) -> Result<Coverage, String> {
    expect_root(root, &["coverage"])?;
    let metrics = root
        .child("project")
        .and_then(|p| p.child("metrics"))
        .ok_or("no <project><metrics> element")?;
    let st = metrics.num("statements").unwrap_or(0);
    let cst = metrics.num("coveredstatements").unwrap_or(0);
    let co = metrics.num("conditionals").unwrap_or(0);
    let cco = metrics.num("coveredconditionals").unwrap_or(0);
    Ok(Coverage {
        lines_covered: cst,
        lines_missed: st.saturating_sub(cst),
        branches_covered: cco,
        branches_missed: co.saturating_sub(cco),
    })
}

/// simplecov's `.resultset.json` (`{suite: {coverage: {file: {lines, branches}}}}`) or its JSON
/// formatter's `coverage.json` (`{coverage: {file: {lines, branches: [..]}}}`).
fn simplecov(bytes: &[u8]) -> Result<Coverage, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v.as_object().ok_or("expected a JSON object")?;
    let mut maps = vec![];
    if let Some(c) = obj.get("coverage").and_then(Value::as_object) {
        maps.push(c);
    } else {
        for suite in obj.values() {
            if let Some(c) = suite.get("coverage").and_then(Value::as_object) {
                maps.push(c);
            }
        }
    }
    if maps.is_empty() {
        return Err("no \"coverage\" object".into());
    }
    let mut c = Coverage::default();
    fn count_branches(v: &Value, c: &mut Coverage) {
        match v {
            Value::Number(n) => {
                if n.as_u64().unwrap_or(0) > 0 {
                    c.branches_covered += 1;
                } else {
                    c.branches_missed += 1;
                }
            }
            Value::Object(m) => m.values().for_each(|x| count_branches(x, c)),
            Value::Array(a) => {
                for x in a {
                    match x.get("coverage") {
                        Some(n) => count_branches(n, c),
                        None => count_branches(x, c),
                    }
                }
            }
            _ => {}
        }
    }
    for files in maps {
        for data in files.values() {
            let lines = data.get("lines").unwrap_or(data);
            for l in lines.as_array().into_iter().flatten() {
                match l.as_u64() {
                    Some(0) => c.lines_missed += 1,
                    Some(_) => c.lines_covered += 1,
                    None => {}
                }
            }
            if let Some(b) = data.get("branches") {
                count_branches(b, &mut c);
            }
        }
    }
    Ok(c)
}

// ---------- summaries ----------

/// CodeBuild's `TestReportSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSummary {
    pub total: u64,
    pub status_counts: BTreeMap<String, u64>,
    pub duration_in_nano_seconds: u64,
}

/// CodeBuild's `CodeCoverageReportSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSummary {
    pub line_coverage_percentage: f64,
    pub lines_covered: u64,
    pub lines_missed: u64,
    pub branch_coverage_percentage: f64,
    pub branches_covered: u64,
    pub branches_missed: u64,
}

/// One report group's report, in the shape of CodeBuild's `Report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub arn: String,
    /// `TEST` or `CODE_COVERAGE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub report_group_arn: String,
    pub execution_id: String,
    /// `SUCCEEDED`, `FAILED` (a test failed) or `INCOMPLETE` (no readable file).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_summary: Option<TestSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_coverage_summary: Option<CoverageSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test_cases: Vec<TestCase>,
    /// Files read, relative to the source directory.
    #[serde(skip)]
    pub files: Vec<String>,
    /// Files that could not be read, with the reason.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn pct(covered: u64, missed: u64) -> f64 {
    let total = covered + missed;
    if total == 0 {
        0.0
    } else {
        (covered as f64 * 10000.0 / total as f64).round() / 100.0
    }
}

impl Report {
    /// An empty report for a group.
    pub fn new(
        format: ReportFormat,
        name: &str,
        arn: String,
        group_arn: String,
        execution: String,
    ) -> Report {
        let coverage = format.is_coverage();
        Report {
            arn,
            kind: if coverage { "CODE_COVERAGE" } else { "TEST" }.to_owned(),
            name: name.to_owned(),
            report_group_arn: group_arn,
            execution_id: execution,
            status: "INCOMPLETE".to_owned(),
            test_summary: (!coverage).then(TestSummary::default),
            code_coverage_summary: coverage.then(CoverageSummary::default),
            test_cases: vec![],
            files: vec![],
            warnings: vec![],
        }
    }

    /// Add one parsed file.
    pub fn add(&mut self, file: &str, parsed: Parsed) {
        self.files.push(file.to_owned());
        match parsed {
            Parsed::Tests(cases) => {
                let s = self.test_summary.get_or_insert_with(TestSummary::default);
                for mut c in cases {
                    s.total += 1;
                    *s.status_counts
                        .entry(c.status.as_str().to_owned())
                        .or_default() += 1;
                    s.duration_in_nano_seconds += c.duration_in_nano_seconds;
                    c.test_raw_data_path = file.to_owned();
                    self.test_cases.push(c);
                }
            }
            Parsed::Coverage(c) => {
                let s = self
                    .code_coverage_summary
                    .get_or_insert_with(CoverageSummary::default);
                s.lines_covered += c.lines_covered;
                s.lines_missed += c.lines_missed;
                s.branches_covered += c.branches_covered;
                s.branches_missed += c.branches_missed;
                s.line_coverage_percentage = pct(s.lines_covered, s.lines_missed);
                s.branch_coverage_percentage = pct(s.branches_covered, s.branches_missed);
            }
        }
        self.status = if self.failed().next().is_some() {
            "FAILED"
        } else {
            "SUCCEEDED"
        }
        .to_owned();
    }

    /// The failed (and errored) test cases.
    pub fn failed(&self) -> impl Iterator<Item = &TestCase> {
        self.test_cases
            .iter()
            .filter(|c| matches!(c.status, TestStatus::Failed | TestStatus::Error))
    }

    /// `total / passed / failed / skipped`, or coverage percentages, in one line.
    pub fn one_line(&self) -> String {
        if let Some(c) = &self.code_coverage_summary {
            return format!(
                "lines {:.2}% ({}/{}), branches {:.2}% ({}/{})",
                c.line_coverage_percentage,
                c.lines_covered,
                c.lines_covered + c.lines_missed,
                c.branch_coverage_percentage,
                c.branches_covered,
                c.branches_covered + c.branches_missed
            );
        }
        let s = self.test_summary.clone().unwrap_or_default();
        let n = |k: &str| s.status_counts.get(k).copied().unwrap_or(0);
        format!(
            "{} total, {} passed, {} failed, {} skipped",
            s.total,
            n("SUCCEEDED"),
            n("FAILED") + n("ERROR"),
            n("SKIPPED")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/reports/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn tests_of(format: ReportFormat, name: &str) -> Vec<TestCase> {
        match parse(format, &fixture(name)).unwrap() {
            Parsed::Tests(t) => t,
            Parsed::Coverage(_) => panic!("coverage"),
        }
    }

    fn counts(cases: &[TestCase]) -> [usize; 4] {
        let n = |s| cases.iter().filter(|c| c.status == s).count();
        [
            n(TestStatus::Succeeded),
            n(TestStatus::Failed),
            n(TestStatus::Error),
            n(TestStatus::Skipped),
        ]
    }

    #[test]
    fn junit() {
        let t = tests_of(ReportFormat::JunitXml, "junit.xml");
        assert_eq!(counts(&t), [2, 1, 1, 1]);
        let f = t.iter().find(|c| c.status == TestStatus::Failed).unwrap();
        assert_eq!(f.name, "subtracts");
        assert_eq!(f.prefix, "calc.MathTest");
        assert_eq!(f.message.as_deref(), Some("expected 1 but was 2"));
        assert_eq!(t[0].duration_in_nano_seconds, 1_500_000_000);
    }

    #[test]
    fn nunit2_nunit3_testng_trx_cucumber() {
        assert_eq!(
            counts(&tests_of(ReportFormat::NunitXml, "nunit2.xml")),
            [1, 1, 0, 1]
        );
        let n3 = tests_of(ReportFormat::Nunit3Xml, "nunit3.xml");
        assert_eq!(counts(&n3), [1, 1, 0, 1]);
        assert_eq!(n3[1].message.as_deref(), Some("Expected: 4 But was: 5"));
        assert_eq!(
            counts(&tests_of(ReportFormat::TestNgXml, "testng.xml")),
            [1, 1, 0, 1]
        );
        let trx = tests_of(ReportFormat::VisualStudioTrx, "results.trx");
        assert_eq!(counts(&trx), [1, 1, 0, 1]);
        assert_eq!(trx[0].duration_in_nano_seconds, 1_250_000_000);
        assert_eq!(
            counts(&tests_of(ReportFormat::CucumberJson, "cucumber.json")),
            [1, 1, 0, 1]
        );
    }

    #[test]
    fn coverage_formats() {
        let cov = |f, n| match parse(f, &fixture(n)).unwrap() {
            Parsed::Coverage(c) => c,
            Parsed::Tests(_) => panic!("tests"),
        };
        let c = cov(ReportFormat::CoberturaXml, "cobertura.xml");
        assert_eq!((c.lines_covered, c.lines_missed), (8, 2));
        assert_eq!((c.branches_covered, c.branches_missed), (1, 1));
        let c = cov(ReportFormat::JacocoXml, "jacoco.xml");
        assert_eq!((c.lines_covered, c.lines_missed), (30, 10));
        assert_eq!((c.branches_covered, c.branches_missed), (3, 1));
        let c = cov(ReportFormat::CloverXml, "clover.xml");
        assert_eq!((c.lines_covered, c.lines_missed), (15, 5));
        assert_eq!((c.branches_covered, c.branches_missed), (2, 2));
        let c = cov(ReportFormat::SimpleCov, "resultset.json");
        assert_eq!((c.lines_covered, c.lines_missed), (3, 1));
        assert_eq!((c.branches_covered, c.branches_missed), (1, 1));
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        for f in ReportFormat::ALL {
            assert!(parse(f, b"<testsuite><testcase").is_err(), "{f:?}");
            assert!(parse(f, b"\xff\xfe garbage").is_err(), "{f:?}");
        }
        assert!(parse(ReportFormat::JunitXml, b"<html/>").is_err());
    }

    #[test]
    fn summaries_have_codebuild_shape() {
        let mut r = Report::new(
            ReportFormat::JunitXml,
            "unit",
            "arn:r".into(),
            "arn:g".into(),
            "arn:b".into(),
        );
        r.add(
            "junit.xml",
            parse(ReportFormat::JunitXml, &fixture("junit.xml")).unwrap(),
        );
        assert_eq!(r.status, "FAILED");
        assert_eq!(r.one_line(), "5 total, 2 passed, 2 failed, 1 skipped");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["testSummary"]["total"], 5);
        assert_eq!(v["testSummary"]["statusCounts"]["FAILED"], 1);
        assert!(v["testSummary"]["durationInNanoSeconds"].is_u64());
        let mut c = Report::new(
            ReportFormat::JacocoXml,
            "cov",
            "a".into(),
            "g".into(),
            "b".into(),
        );
        c.add(
            "j.xml",
            Parsed::Coverage(Coverage {
                lines_covered: 1,
                lines_missed: 2,
                branches_covered: 0,
                branches_missed: 0,
            }),
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["codeCoverageSummary"]["lineCoveragePercentage"], 33.33);
        assert_eq!(v["type"], "CODE_COVERAGE");
    }
}
