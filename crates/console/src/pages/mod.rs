//! The console's HTML (maud, compiled in): one function per page, each taking the values to
//! show and returning markup, no I/O. Status words become `st-<status>` classes (the colours
//! live in the stylesheet); sections that change while something runs carry `data-refresh`
//! and an id, which the console's script replaces in place; a page whose content may still
//! change has `data-live` on its body.

use crate::{ansi, encode};
use localbuild_engine::images::PhaseImages;
use localbuild_engine::record::{Build, BuildBatch, PhaseContext};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

mod pipelines;
pub use pipelines::*;

/// Who is looking at a page, and the token its forms carry.
pub struct Viewer {
    /// The access key id logged in (`None` without `--credentials`).
    pub user: Option<String>,
    pub csrf: String,
}

/// One page of the builds list.
pub struct Listing {
    pub builds: Vec<Build>,
    /// The token of the next (older) page.
    pub next: Option<String>,
    /// Every project, for the filter.
    pub projects: Vec<String>,
    pub project: Option<String>,
    pub status: Option<String>,
    /// Whether this is a later page (not the newest).
    pub paged: bool,
}

/// What the build page shows.
pub struct BuildPage<'a> {
    pub build: &'a Build,
    /// The log's complete lines so far (its last ones when it is long).
    pub lines: &'a [String],
    /// How many lines come before `lines` (shown only in the raw log).
    pub first: usize,
    /// The log's byte offset after those lines (where the live stream continues).
    pub offset: usize,
    /// The reports written for the build (`reports/<group>.json`).
    pub reports: &'a [Value],
    /// Files under the artifacts folder, with their sizes.
    pub artifacts: &'a [(String, u64)],
    /// The images the build built and pushed, per phase (as its log tells).
    pub images: &'a [PhaseImages],
    pub now: f64,
}

const STATUSES: &[&str] = &[
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "FAULT",
    "STOPPED",
    "TIMED_OUT",
];

/// The class of a status word (`SUCCEEDED`, `Succeeded`, `InProgress` → `st-succeeded`, …).
pub fn status_class(status: &str) -> String {
    let s: String = status
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    format!("st st-{s}")
}

fn badge(status: &str) -> Markup {
    html! { span class=(status_class(status)) { (status) } }
}

/// `1h 02m`, `3m 05s`, `12s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// An epoch time as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(epoch: f64) -> String {
    let secs = epoch.max(0.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn time_el(epoch: f64) -> Markup {
    html! { time datetime=(format!("{}Z", time(epoch).replace(' ', "T"))) { (time(epoch)) } }
}

/// Who started a build: `pipeline`, `batch`, `API` (`localbuild serve`'s own initiator) or
/// `CLI` (`localbuild run`, as the user).
pub fn initiator_kind(build: &Build) -> &'static str {
    if build.initiator.starts_with("codepipeline/") {
        "pipeline"
    } else if build.build_batch_arn.is_some() {
        "batch"
    } else if build.initiator == "localbuild" {
        "API"
    } else {
        "CLI"
    }
}

fn build_link(id: &str) -> String {
    crate::build_path(id)
}

fn build_duration(b: &Build, now: f64) -> f64 {
    b.end_time.unwrap_or(now) - b.start_time
}

/// A form with one button that runs a console action.
fn button(v: &Viewer, back: &str, label: &str, class: &str, fields: &[(&str, &str)]) -> Markup {
    html! {
        form.action method="post" action="/console/action" {
            input type="hidden" name="csrf" value=(v.csrf);
            input type="hidden" name="back" value=(back);
            @for (k, val) in fields {
                input type="hidden" name=(k) value=(val);
            }
            button type="submit" class=(class) { (label) }
        }
    }
}

fn layout(v: Option<&Viewer>, title: &str, current: &str, live: bool, body: Markup) -> Markup {
    let nav = [
        ("/builds", "Builds"),
        ("/projects", "Projects"),
        ("/batches", "Batches"),
        ("/pipelines", "Pipelines"),
        ("/ecs", "ECS services"),
        ("/roles", "Roles"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · localbuild" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body data-live[live] {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a.brand href="/builds" { "localbuild" }
                        @if v.is_some() {
                            ul {
                                @for (href, label) in nav {
                                    li {
                                        @if label == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        @if let Some(Viewer { user: Some(user), .. }) = v {
                            form.logout method="post" action="/logout" {
                                span.user { (user) }
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page with a title and a message (errors, refusals).
pub fn message_page(v: Option<&Viewer>, title: &str, message: &str) -> Markup {
    layout(
        v,
        title,
        "",
        false,
        html! {
            h1 { (title) }
            p.message role="alert" { (message) }
            p { a href="/builds" { "Back to the builds" } }
        },
    )
}

/// The login form (with `--credentials`).
pub fn login(next: &str, error: Option<&str>) -> Markup {
    layout(
        None,
        "Log in",
        "",
        false,
        html! {
            h1 { "Log in" }
            p { "This server was started with " code { "--credentials" } ": log in with one of its keys." }
            @if let Some(e) = error { p.message role="alert" { (e) } }
            form.login method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                label { "Access key id" input type="text" name="access_key_id" autocomplete="username" required; }
                label { "Secret access key" input type="password" name="secret_access_key" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The builds list.
pub fn builds(v: &Viewer, l: &Listing, now: f64) -> Markup {
    let live = l.builds.iter().any(|b| !b.build_complete);
    let mut first_page = String::from("/builds");
    let mut filters = vec![];
    if let Some(p) = &l.project {
        filters.push(format!("project={}", encode(p)));
    }
    if let Some(s) = &l.status {
        filters.push(format!("status={}", encode(s)));
    }
    if !filters.is_empty() {
        first_page = format!("/builds?{}", filters.join("&"));
    }
    let next_page = l.next.as_ref().map(|n| {
        let mut f = filters.clone();
        f.push(format!("next={}", encode(n)));
        format!("/builds?{}", f.join("&"))
    });
    layout(
        Some(v),
        "Builds",
        "Builds",
        live,
        html! {
            h1 { "Builds" }
            form.filters method="get" action="/builds" {
                label { "Project "
                    select name="project" {
                        option value="" { "All projects" }
                        @for p in &l.projects {
                            option value=(p) selected[l.project.as_deref() == Some(p)] { (p) }
                        }
                    }
                }
                label { "Status "
                    select name="status" {
                        option value="" { "Any status" }
                        @for s in STATUSES {
                            option value=(s) selected[l.status.as_deref() == Some(*s)] { (s) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            section #builds data-refresh {
                @if l.builds.is_empty() {
                    p { "No builds." }
                } @else {
                    div.scroll {
                        table.list {
                            thead { tr { th { "Build" } th { "Status" } th { "Project" } th { "Initiator" } th { "Started" } th { "Duration" } } }
                            tbody {
                                @for b in &l.builds {
                                    tr {
                                        td { a href=(build_link(&b.id)) { (b.project_name) ":" (b.build_number) } }
                                        td { (badge(b.build_status.as_str())) }
                                        td { a href=(format!("/builds?project={}", encode(&b.project_name))) { (b.project_name) } }
                                        td { span.kind { (initiator_kind(b)) } " " small { (b.initiator) } }
                                        td { (time_el(b.start_time)) }
                                        td.num { (duration(build_duration(b, now))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav.pages aria-label="Pages" {
                @if l.paged {
                    a href=(first_page) { "Newest" }
                }
                @if let Some(n) = next_page {
                    " " a href=(n) rel="next" { "Older →" }
                }
            }
        },
    )
}

/// One phase (or batch phase) of a timeline.
struct Bar<'a> {
    name: &'a str,
    status: Option<&'a str>,
    start: f64,
    end: Option<f64>,
    contexts: &'a [PhaseContext],
}

/// Phases as bars. Once the whole is `complete`, a phase left open is its final marker
/// (CodeBuild's COMPLETED, a batch's SUCCEEDED / FAILED / STOPPED): no status, no duration.
fn timeline(bars: &[Bar<'_>], now: f64, complete: bool) -> Markup {
    let marker = |b: &Bar<'_>| complete && b.end.is_none();
    let len = |b: &Bar<'_>| {
        if marker(b) {
            0.0
        } else {
            (b.end.unwrap_or(now) - b.start).max(0.0)
        }
    };
    let total: f64 = bars.iter().map(len).sum::<f64>().max(1.0);
    html! {
        ol.timeline {
            @for b in bars {
                @let status = if marker(b) { "" } else { b.status.unwrap_or("IN_PROGRESS") };
                @let title = b.contexts.iter().filter(|c| !c.status_code.is_empty() || !c.message.is_empty()).map(|c| format!("{}: {}", c.status_code, c.message)).collect::<Vec<_>>().join("\n");
                li class=(format!("phase {}", status_class(status))) data-phase=(b.name) title=[(!title.is_empty()).then_some(&title)] {
                    span.name { (b.name) }
                    span.track { span.bar style=(format!("width:{:.1}%", (len(b) / total * 100.0).max(0.5))) {} }
                    span.dur { @if !status.is_empty() { (duration(len(b))) " " span.word { (status) } } }
                    @if !title.is_empty() {
                        span.contexts { (title) }
                    }
                }
            }
        }
    }
}

/// One log line with its anchor.
pub fn log_line(n: usize, line: &str) -> Markup {
    html! {
        div.ln id=(format!("L{n}")) {
            a.n href=(format!("#L{n}")) aria-label=(format!("line {n}")) { (n) }
            span.t { (PreEscaped(ansi::to_html(line))) }
        }
    }
}

/// A build's page.
pub fn build(v: &Viewer, p: &BuildPage<'_>) -> Markup {
    let b = p.build;
    let here = build_link(&b.id);
    let bars: Vec<Bar<'_>> = b
        .phases
        .iter()
        .map(|ph| Bar {
            name: ph.phase_type.as_str(),
            status: ph.phase_status.map(|s| s.as_str()),
            start: ph.start_time,
            end: ph.end_time,
            contexts: ph.contexts.as_deref().unwrap_or_default(),
        })
        .collect();
    let events = format!(
        "{here}/log/events?offset={}&line={}",
        p.offset,
        p.first + p.lines.len()
    );
    layout(
        Some(v),
        &format!("{}:{}", b.project_name, b.build_number),
        "Builds",
        !b.build_complete,
        html! {
            h1 { "Build " (b.project_name) ":" (b.build_number) }
            section #summary data-refresh aria-label="Summary" {
                p.status { (badge(b.build_status.as_str())) " " span.phase { (b.current_phase.as_str()) } }
                dl.facts {
                    dt { "Project" } dd { a href=(format!("/builds?project={}", encode(&b.project_name))) { (b.project_name) } }
                    dt { "Build id" } dd { code { (b.id) } }
                    dt { "Initiator" } dd { (initiator_kind(b)) " (" (b.initiator) ")" }
                    dt { "Started" } dd { (time_el(b.start_time)) }
                    dt { "Duration" } dd { (duration(build_duration(b, p.now))) }
                    @if let Some(v) = b.resolved_source_version.as_ref().or(b.source_version.as_ref()) {
                        dt { "Source version" } dd { code { (v) } }
                    }
                    dt { "Source" } dd { (b.source.kind) " " (b.source.location) }
                    dt { "Image" } dd { code { (b.environment.image) } }
                    @if let Some(arn) = &b.build_batch_arn {
                        @let batch = arn.split_once(":build-batch/").map_or(arn.as_str(), |(_, id)| id);
                        dt { "Batch" } dd { a href=(format!("/batches/{}", encode(batch))) { (batch) } }
                    }
                }
                div.buttons {
                    @if b.build_complete {
                        (button(v, &here, "Retry", "primary", &[("op", "RetryBuild"), ("id", &b.id)]))
                    } @else {
                        (button(v, &here, "Stop", "danger", &[("op", "StopBuild"), ("id", &b.id)]))
                    }
                }
            }
            section #phases data-refresh aria-labelledby="phases-h" {
                h2 #phases-h { "Phases" }
                (timeline(&bars, p.now, b.build_complete))
            }
            section aria-labelledby="log-h" {
                h2 #log-h { "Log " small { a href=(format!("{here}/log")) { "raw" } } }
                @if p.first > 0 {
                    p { small { (p.first) " earlier lines are in the " a href=(format!("{here}/log")) { "raw log" } "." } }
                }
                div #log.log role="log" aria-live="off" data-events=[(!b.build_complete).then_some(&events)] {
                    @for (i, line) in p.lines.iter().enumerate() {
                        (log_line(p.first + i + 1, line))
                    }
                }
                @if !b.build_complete {
                    noscript { p { "The build is running: reload the page for more of its log." } }
                }
            }
            section #outputs data-refresh aria-label="Outputs" {
                @if !b.exported_environment_variables.is_empty() {
                    h2 { "Exported variables" }
                    table.list { tbody {
                        @for var in &b.exported_environment_variables {
                            tr { th scope="row" { code { (var.name) } } td { code { (var.value) } } }
                        }
                    } }
                }
                @if !p.images.is_empty() {
                    h2 { "Images" }
                    ul.images {
                        @for ph in p.images {
                            @for name in &ph.built {
                                li data-built=(name) { span.kind { (ph.phase.as_str()) } " built " code { (name) } }
                            }
                            @for pushed in &ph.pushed {
                                li data-pushed=(pushed.reference) { span.kind { (ph.phase.as_str()) } " pushed " code { (pushed.reference) } " " small { code { (pushed.digest) } } }
                            }
                        }
                    }
                }
                @if !p.reports.is_empty() {
                    h2 { "Reports" }
                    @for r in p.reports { (report(r)) }
                }
                @if !p.artifacts.is_empty() {
                    h2 { "Artifacts" }
                    ul.files {
                        @for (f, size) in p.artifacts {
                            li { a href=(format!("{here}/artifacts/{}", f.split('/').map(encode).collect::<Vec<_>>().join("/"))) download { (f) } " " small { (size) " bytes" } }
                        }
                    }
                }
            }
        },
    )
}

fn report(r: &Value) -> Markup {
    let failed: Vec<&Value> = r["testCases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| matches!(c["status"].as_str(), Some("FAILED" | "ERROR")))
        .collect();
    html! {
        article.report {
            h3 { (r["name"].as_str().unwrap_or("report")) " " (badge(r["status"].as_str().unwrap_or("UNKNOWN"))) }
            @if let Some(t) = r["testSummary"].as_object() {
                p {
                    (t.get("total").and_then(Value::as_u64).unwrap_or(0)) " tests: "
                    @for (k, n) in t.get("statusCounts").and_then(Value::as_object).into_iter().flatten() {
                        @if n.as_u64().unwrap_or(0) > 0 { span class=(status_class(k)) { (k) " " (n) } " " }
                    }
                }
            }
            @if let Some(c) = r["codeCoverageSummary"].as_object() {
                p { "Line coverage " (c.get("lineCoveragePercentage").and_then(Value::as_f64).unwrap_or(0.0)) "%, branch coverage " (c.get("branchCoveragePercentage").and_then(Value::as_f64).unwrap_or(0.0)) "%" }
            }
            @if !failed.is_empty() {
                ul.failed {
                    @for c in failed {
                        li { code { (c["prefix"].as_str().unwrap_or("")) " " (c["name"].as_str().unwrap_or("")) } @if let Some(m) = c["message"].as_str() { ": " (m) } }
                    }
                }
            }
        }
    }
}

/// The projects page.
pub fn projects(v: &Viewer, projects: &[Value]) -> Markup {
    layout(
        Some(v),
        "Projects",
        "Projects",
        false,
        html! {
            h1 { "Projects" }
            @if projects.is_empty() { p { "No projects. Create one with " code { "aws codebuild create-project" } "." } }
            @else {
                div.scroll { table.list {
                    thead { tr { th { "Project" } th { "Source" } th { "Image" } th { "Description" } } }
                    tbody {
                        @for p in projects {
                            @let name = p["name"].as_str().unwrap_or("");
                            tr {
                                td { a href=(format!("/builds?project={}", encode(name))) { (name) } }
                                td { (p["source"]["type"].as_str().unwrap_or("")) " " small { (p["source"]["location"].as_str().unwrap_or("")) } }
                                td { code { (p["environment"]["image"].as_str().unwrap_or("")) } }
                                td { (p["description"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                } }
            }
        },
    )
}

/// An IAM role as the roles page shows it.
#[derive(Debug, Clone, Default)]
pub struct RoleView {
    pub name: String,
    pub arn: String,
    /// The trust policy, as given.
    pub assume_role_policy: String,
    /// Its inline policies' names.
    pub inline: Vec<String>,
    /// Its attached managed policies' ARNs, in attachment order.
    pub attached: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
}

/// The IAM roles page: each role's trust, inline and attached policies, shown, not enforced.
pub fn roles(v: &Viewer, roles: &[RoleView]) -> Markup {
    layout(
        Some(v),
        "Roles",
        "Roles",
        false,
        html! {
            h1 { "Roles" }
            p { "IAM roles as client code created them. Stored and shown, not enforced: no call is allowed or refused by them." }
            @if roles.is_empty() { p { "No roles. Create one with " code { "aws iam create-role" } "." } }
            @else {
                div.scroll { table.list {
                    thead { tr { th { "Role" } th { "Trusted by" } th { "Inline policies" } th { "Attached policies" } th { "Created" } } }
                    tbody {
                        @for r in roles {
                            tr {
                                td { (r.name) " " small { (r.arn) } }
                                td { (trusted_services(&r.assume_role_policy).join(", ")) }
                                td { (r.inline.join(", ")) }
                                td { @for arn in &r.attached { div { code { (arn) } } } }
                                td { (time_el(r.created as f64)) }
                            }
                        }
                    }
                } }
            }
        },
    )
}

/// The service principals a trust policy names (`codebuild.amazonaws.com`, …).
fn trusted_services(policy: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(policy).unwrap_or(Value::Null);
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => vec![],
    };
    let mut out = vec![];
    for st in statements {
        match &st["Principal"]["Service"] {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out
}

/// The batches page.
pub fn batches(v: &Viewer, batches: &[BuildBatch], now: f64) -> Markup {
    layout(
        Some(v),
        "Batches",
        "Batches",
        batches.iter().any(|b| !b.complete),
        html! {
            h1 { "Batches" }
            section #batches data-refresh {
                @if batches.is_empty() { p { "No batch builds." } }
                @else {
                    div.scroll { table.list {
                        thead { tr { th { "Batch" } th { "Status" } th { "Builds" } th { "Started" } th { "Duration" } } }
                        tbody {
                            @for b in batches {
                                tr {
                                    td { a href=(format!("/batches/{}", encode(&b.id))) { (b.project_name) ":" (b.build_batch_number) } }
                                    td { (badge(b.build_batch_status.as_str())) }
                                    td.num { (b.build_groups.len()) }
                                    td { (time_el(b.start_time)) }
                                    td.num { (duration(b.end_time.unwrap_or(now) - b.start_time)) }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}

/// How deep each build group sits in the dependency graph (roots are 0).
pub fn depths(groups: &[(String, Vec<String>)]) -> Vec<usize> {
    let mut depth = vec![0usize; groups.len()];
    // At most n rounds: a longest path has n - 1 edges (cycles are cut there).
    for _ in 0..groups.len() {
        let mut changed = false;
        for (i, (_, deps)) in groups.iter().enumerate() {
            for d in deps {
                if let Some(j) = groups.iter().position(|(id, _)| id == d)
                    && depth[i] < depth[j] + 1
                    && depth[j] < groups.len()
                {
                    depth[i] = depth[j] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// A batch's page: its phases and its builds as a dependency graph, in columns by depth.
pub fn batch(v: &Viewer, b: &BuildBatch, now: f64) -> Markup {
    let here = format!("/batches/{}", encode(&b.id));
    let groups: Vec<(String, Vec<String>)> = b
        .build_groups
        .iter()
        .map(|g| (g.identifier.clone(), g.depends_on.clone()))
        .collect();
    let depth = depths(&groups);
    let columns = depth.iter().copied().max().map_or(0, |d| d + 1);
    let bars: Vec<Bar<'_>> = b
        .phases
        .iter()
        .map(|ph| Bar {
            name: ph.phase_type.as_str(),
            status: ph.phase_status.map(|s| s.as_str()),
            start: ph.start_time,
            end: ph.end_time,
            contexts: ph.contexts.as_deref().unwrap_or_default(),
        })
        .collect();
    layout(
        Some(v),
        &format!("Batch {}:{}", b.project_name, b.build_batch_number),
        "Batches",
        !b.complete,
        html! {
            h1 { "Batch " (b.project_name) ":" (b.build_batch_number) }
            section #summary data-refresh aria-label="Summary" {
                p.status { (badge(b.build_batch_status.as_str())) " " (b.current_phase.as_str()) }
                dl.facts {
                    dt { "Batch id" } dd { code { (b.id) } }
                    dt { "Started" } dd { (time_el(b.start_time)) }
                    dt { "Duration" } dd { (duration(b.end_time.unwrap_or(now) - b.start_time)) }
                }
                div.buttons {
                    @if b.complete {
                        (button(v, &here, "Retry failed builds", "primary", &[("op", "RetryBuildBatch"), ("id", &b.id)]))
                    } @else {
                        (button(v, &here, "Stop", "danger", &[("op", "StopBuildBatch"), ("id", &b.id)]))
                    }
                }
                h2 { "Phases" }
                (timeline(&bars, now, b.complete))
            }
            section #graph data-refresh aria-labelledby="graph-h" {
                h2 #graph-h { "Builds" }
                div.graph {
                    @for col in 0..columns {
                        ol.column aria-label=(format!("Step {}", col + 1)) {
                            @for (i, g) in b.build_groups.iter().enumerate().filter(|(i, _)| depth[*i] == col) {
                                @let status = g.current_build_summary.as_ref().map_or("PENDING", |s| s.build_status.as_str());
                                li class=(format!("card {}", status_class(status))) data-group=(g.identifier) {
                                    strong { (g.identifier) } " " (badge(status))
                                    @if !g.depends_on.is_empty() { br; small { "after " (g.depends_on.join(", ")) } }
                                    @if g.ignore_failure { br; small { "failure ignored" } }
                                    @if let Some(arn) = g.current_build_summary.as_ref().and_then(|s| s.arn.as_deref()) {
                                        @let id = arn.split_once(":build/").map_or(arn, |(_, id)| id);
                                        br; a href=(build_link(id)) { "Build details" }
                                    }
                                    @let _ = i;
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_both_apis_share_classes() {
        assert_eq!(status_class("SUCCEEDED"), "st st-succeeded");
        assert_eq!(status_class("Succeeded"), "st st-succeeded");
        assert_eq!(status_class("IN_PROGRESS"), "st st-inprogress");
        assert_eq!(status_class("InProgress"), "st st-inprogress");
    }

    #[test]
    fn durations_and_times_read_plainly() {
        assert_eq!(duration(12.4), "12s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(3720.0), "1h 02m");
        assert_eq!(time(0.0), "1970-01-01 00:00:00");
        assert_eq!(time(1_796_082_062.0), "2026-11-30 23:41:02");
        assert_eq!(time(951_782_400.0), "2000-02-29 00:00:00");
    }

    #[test]
    fn batch_groups_sit_after_what_they_depend_on() {
        let g =
            |id: &str, deps: &[&str]| (id.to_owned(), deps.iter().map(|d| d.to_string()).collect());
        let groups = vec![g("c", &["b"]), g("a", &[]), g("b", &["a"]), g("d", &["a"])];
        assert_eq!(depths(&groups), vec![2, 0, 1, 1]);
        // A cycle ends, it does not loop.
        let cycle = vec![g("x", &["y"]), g("y", &["x"])];
        assert!(depths(&cycle).iter().all(|d| *d <= 2));
    }

    #[test]
    fn the_builds_page_pages_on_and_keeps_its_filters() {
        let v = Viewer {
            user: None,
            csrf: "t".into(),
        };
        let l = Listing {
            builds: vec![],
            next: Some("tok en".into()),
            projects: vec!["web".into()],
            project: Some("web".into()),
            status: Some("FAILED".into()),
            paged: true,
        };
        let html = builds(&v, &l, 0.0).into_string();
        assert!(
            html.contains(
                "href=\"/builds?project=web&amp;status=FAILED&amp;next=tok%20en\" rel=\"next\""
            ),
            "{html}"
        );
        assert!(
            html.contains("href=\"/builds?project=web&amp;status=FAILED\">Newest"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"FAILED\" selected>"),
            "{html}"
        );
    }

    #[test]
    fn phase_bars_are_as_long_as_their_phases_with_contexts_on_hover() {
        let ctx = PhaseContext {
            status_code: "COMMAND_EXECUTION_ERROR".into(),
            message: "Error while executing command: make. Reason: exit status 2".into(),
        };
        let bars = [
            Bar {
                name: "INSTALL",
                status: Some("SUCCEEDED"),
                start: 0.0,
                end: Some(1.0),
                contexts: &[],
            },
            Bar {
                name: "BUILD",
                status: Some("FAILED"),
                start: 1.0,
                end: Some(4.0),
                contexts: std::slice::from_ref(&ctx),
            },
            Bar {
                name: "COMPLETED",
                status: None,
                start: 4.0,
                end: None,
                contexts: &[],
            },
        ];
        let html = timeline(&bars, 10.0, true).into_string();
        assert!(html.contains("data-phase=\"INSTALL\""), "{html}");
        assert!(html.contains("style=\"width:25.0%\""), "{html}");
        assert!(html.contains("style=\"width:75.0%\""), "{html}");
        assert!(html.contains("class=\"phase st st-failed\""), "{html}");
        assert!(
            html.contains("title=\"COMMAND_EXECUTION_ERROR: Error while executing command: make."),
            "{html}"
        );
    }

    #[test]
    fn log_lines_are_anchored_and_escaped() {
        let l = log_line(7, "\x1b[32m<ok>\x1b[0m").into_string();
        assert!(l.contains("id=\"L7\""), "{l}");
        assert!(l.contains("href=\"#L7\""), "{l}");
        assert!(l.contains("<span class=\"af2\">&lt;ok&gt;</span>"), "{l}");
    }

    #[test]
    fn a_role_shows_who_it_trusts_and_its_policies() {
        let v = Viewer {
            user: None,
            csrf: "t".into(),
        };
        let role = RoleView {
            name: "build".into(),
            arn: "arn:aws:iam::000000000000:role/build".into(),
            assume_role_policy: r#"{"Statement": {"Principal": {"Service": ["codebuild.amazonaws.com", "codepipeline.amazonaws.com"]}}}"#.into(),
            inline: vec!["logs".into(), "s3".into()],
            attached: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            created: 0,
        };
        let html = roles(&v, &[role]).into_string();
        assert!(
            html.contains("<small>arn:aws:iam::000000000000:role/build</small>"),
            "{html}"
        );
        assert!(
            html.contains("<td>codebuild.amazonaws.com, codepipeline.amazonaws.com</td>"),
            "{html}"
        );
        assert!(html.contains("<td>logs, s3</td>"), "{html}");
        assert!(
            html.contains("<code>arn:aws:iam::aws:policy/ReadOnlyAccess</code>"),
            "{html}"
        );
        assert!(roles(&v, &[]).into_string().contains("No roles."));
    }
}
