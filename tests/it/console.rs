//! The web console of `localbuild serve`, in a real browser and over plain HTTP.
//!
//! Browser tests drive Debian's `chromium` through `chromedriver` (WebDriver, the `fantoccini`
//! crate) against a real server running real Docker builds; every wait is a bounded poll of
//! the page. Screenshots of the main pages are kept in `target/console-screenshots/` (CI
//! artifacts). The plain-HTTP tests read the pages without JavaScript and check the login and
//! the refusal of cross-site posts.

use crate::api::{Serve, get, http};
use crate::harness::{eventually, within};
use crate::util::git;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Plain HTTP

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the first hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the page has the field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

#[test]
fn console_pages_read_without_javascript() {
    let s = Serve::start(&[]);
    s.create_project(
        "console-plain",
        &["printf '\\033[31mred alert\\033[0m <tag>\\n'", "echo done"],
    );
    let started = s.start_build("console-plain");
    let id = started["id"].as_str().unwrap().to_owned();
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED");

    // The deep link is the build's console page.
    let link = done["logs"]["deepLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("http://{}/builds/", s.addr)),
        "{link}"
    );
    let page = get(&s.addr, &path_of(link));
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Build console-plain:1"), "{}", page.body);
    assert!(page.body.contains("st-succeeded"));
    assert!(page.body.contains("data-phase=\"BUILD\""));
    // The log: ANSI colours as spans, HTML escaped, every line anchored.
    assert!(
        page.body
            .contains("<span class=\"af1\">red alert</span> &lt;tag&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"L1\""));
    assert!(page.body.contains("value=\"RetryBuild\""));

    let raw = get(&s.addr, &format!("{}/log", path_of(link)));
    assert!(raw.body.contains("done"), "{}", raw.body);

    let builds = get(&s.addr, "/builds?project=console-plain");
    assert_eq!(builds.status, 200);
    assert!(builds.body.contains("console-plain:1"));
    assert!(builds.body.contains("API"), "initiator kind");
    let none = get(&s.addr, "/builds?status=FAILED");
    assert!(none.body.contains("No builds."));
    for (path, text) in [
        ("/projects", "console-plain"),
        ("/batches", "No batch builds."),
        ("/pipelines", "No pipelines."),
    ] {
        let r = get(&s.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains(text), "{path}: {}", r.body);
    }
    assert_eq!(
        get(&s.addr, "/").header("location").as_deref(),
        Some("/builds")
    );
    assert_eq!(get(&s.addr, "/builds/nope:1").status, 404);
    assert_eq!(get(&s.addr, "/builds?next=garbage").status, 400);
    assert_eq!(get(&s.addr, "/pipelines/nope").status, 404);

    // A button posted by another site is refused, with or without its token.
    let csrf = hidden(&page.body, "csrf");
    let body = form(&[("csrf", &csrf), ("op", "RetryBuild"), ("id", &id)]);
    let kind = ("Content-Type", "application/x-www-form-urlencoded");
    let evil = http(
        &s.addr,
        "POST",
        "/console/action",
        &[kind, ("Origin", "http://evil.example")],
        &body,
    );
    assert_eq!(evil.status, 403);
    let stale = form(&[("csrf", "0000"), ("op", "RetryBuild"), ("id", &id)]);
    assert_eq!(
        http(&s.addr, "POST", "/console/action", &[kind], &stale).status,
        403
    );
    // From this origin with the token: the retry starts build 2, and the answer is its page.
    let origin = format!("http://{}", s.addr);
    let ok = http(
        &s.addr,
        "POST",
        "/console/action",
        &[kind, ("Origin", &origin)],
        &body,
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    let location = ok.header("location").unwrap();
    assert!(
        location.starts_with("/builds/console-plain%3A"),
        "{location}"
    );
    let retried = get(&s.addr, &location);
    assert!(retried.body.contains("Build console-plain:2"));
    let id2 = hidden(&retried.body, "id");
    s.wait_complete(&id2);
    // Newest first.
    let list = get(&s.addr, "/builds?project=console-plain").body;
    let (newer, older) = (
        list.find(">console-plain:2<").expect("build 2 listed"),
        list.find(">console-plain:1<").expect("build 1 listed"),
    );
    assert!(newer < older, "newest first");

    // A batch: its tasks in dependency order, with statuses and links to their builds.
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on:\n        - first\nphases:\n  build:\n    commands:\n      - echo task $CODEBUILD_BATCH_BUILD_IDENTIFIER\n";
    s.create_batch_project("console-batch", spec);
    let batch = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "console-batch",
    ])["buildBatch"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.wait_batch(&batch, 180, "batch complete", |b| b["complete"] == true);
    let list = get(&s.addr, "/batches");
    assert!(list.body.contains("console-batch:1"), "{}", list.body);
    let page = get(&s.addr, &format!("/batches/{}", encode(&batch)));
    assert_eq!(page.status, 200, "{}", page.body);
    let first = page.body.find("data-group=\"first\"").expect("task first");
    let second = page
        .body
        .find("data-group=\"second\"")
        .expect("task second");
    assert!(first < second, "a task comes after what it depends on");
    assert!(page.body.contains("after first"));
    assert_eq!(page.body.matches("Build details").count(), 2);
    assert!(page.body.contains("value=\"RetryBuildBatch\""));
    // Its Retry button runs RetryBuildBatch as the API would: a batch with no failed builds
    // has nothing to retry, and the page says why in the API's words.
    let retry = form(&[("csrf", &csrf), ("op", "RetryBuildBatch"), ("id", &batch)]);
    let answer = http(
        &s.addr,
        "POST",
        "/console/action",
        &[kind, ("Origin", &origin)],
        &retry,
    );
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(
        answer.body.contains("InvalidInputException")
            && answer.body.contains("has no failed builds to retry"),
        "{}",
        answer.body
    );
}

#[test]
fn console_build_page_shows_what_the_build_made() {
    use crate::registry::{Registry, TagGuard};
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.yml");
    std::fs::write(
        &secrets,
        "parameter-store:\n  /console/token: \"tok-sekret-4242\"\n",
    )
    .unwrap();
    let s = Serve::start(&["--secrets-file", secrets.to_str().unwrap()]);
    let repo = format!("console/app-{}", std::process::id());
    let local = format!("lbtest-console-{}:1", std::process::id());
    let pushed = format!("{}/{repo}:1", reg.addr());
    let _local = TagGuard(local.clone());
    let _pushed = TagGuard(pushed.clone());
    let junit = r#"<testsuite name="unit" tests="2" failures="1"><testcase classname="calc" name="adds"/><testcase classname="calc" name="divides"><failure message="expected 2, got 3"/></testcase></testsuite>"#;
    // Built by `localbuild run` on the server's home: the console shows CLI builds too.
    let src = dir.path().join("console-made");
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(
        src.join("app/Dockerfile"),
        "FROM localbuild-test/busybox:1\n",
    )
    .unwrap();
    std::fs::write(
        src.join("buildspec.yml"),
        format!(
            "version: 0.2\n\
             env:\n  variables:\n    REGISTRY: \"{registry}\"\n    LOCAL: \"{local}\"\n    PUSHED: \"{pushed}\"\n\
             \x20   REGISTRY_USER: \"{user}\"\n    REGISTRY_PASSWORD: \"{password}\"\n\
             \x20 parameter-store:\n    TOKEN: /console/token\n  exported-variables:\n    - VERSION\n\
             phases:\n  pre_build:\n    commands:\n      - echo \"$REGISTRY_PASSWORD\" | docker login -u \"$REGISTRY_USER\" --password-stdin \"$REGISTRY\"\n\
             \x20 build:\n    commands:\n      - echo \"token is $TOKEN\"\n      - export VERSION=1.2.3\n\
             \x20     - docker build -t \"$LOCAL\" app\n      - docker tag \"$LOCAL\" \"$PUSHED\"\n\
             \x20     - mkdir -p out && echo hello > out/hello.txt\n\
             \x20 post_build:\n    commands:\n      - docker push \"$PUSHED\"\n\
             reports:\n  unit:\n    files: [junit.xml]\n    file-format: JUNITXML\n\
             artifacts:\n  files: [out/hello.txt]\n",
            registry = reg.addr(),
            user = reg.user(),
            password = reg.password(),
        ),
    )
    .unwrap();
    std::fs::write(src.join("junit.xml"), junit).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args([
            "run",
            "-d",
            "-i",
            "localbuild-test/docker:1",
            "--secrets-file",
        ])
        .arg(&secrets)
        .current_dir(&src)
        .env("LOCALBUILD_HOME", s.home.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Build #1 ")?.split(' ').next())
        .unwrap_or_else(|| panic!("no build id: {out}"))
        .to_owned();
    let done = s.build(&id);
    // A failed test in a report does not fail the build.
    let page = get(&s.addr, &format!("/builds/{}", encode(&id)));
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{out}");
    assert_eq!(page_status(body), "SUCCEEDED");
    assert!(body.contains("<dd>CLI ("), "the initiator kind: {body}");

    // Secrets masked in the log, exported variables listed.
    assert!(body.contains("token is ***"), "{body}");
    assert!(!body.contains("tok-sekret-4242"));
    assert!(body.contains("<code>VERSION</code>"), "{body}");
    assert!(body.contains("<code>1.2.3</code>"), "{body}");
    // The test report: its counts and the failed test with its message.
    assert!(body.contains("2 tests"), "{body}");
    assert!(body.contains("divides"), "{body}");
    assert!(body.contains("expected 2, got 3"), "{body}");
    // The image built in BUILD and pushed in POST_BUILD, with the registry's digest.
    let digest = reg
        .manifest_digest(&repo, "1")
        .unwrap()
        .expect("the image was pushed");
    assert!(
        body.contains(&format!("data-built=\"{}\"", local)),
        "{body}"
    );
    assert!(
        body.contains(&format!("data-pushed=\"{pushed}\"")),
        "{body}"
    );
    assert!(body.contains(&digest), "{body}");
    // Artifacts as download links.
    let link = format!("/builds/{}/artifacts/primary/out/hello.txt", encode(&id));
    assert!(
        body.contains(&format!("href=\"{link}\" download")),
        "{body}"
    );
    let file = get(&s.addr, &link);
    assert_eq!(file.status, 200);
    assert_eq!(file.body, "hello\n");
    assert!(
        file.header("content-disposition")
            .unwrap()
            .contains("hello.txt")
    );
    assert_eq!(
        get(
            &s.addr,
            &format!("/builds/{}/artifacts/../log.txt", encode(&id))
        )
        .status,
        404
    );
}

#[test]
fn console_pipeline_page_shows_every_action_with_its_artifacts() {
    use crate::pipeline::{
        connection, plain_repo, project_with, two_source_buildspec, two_source_pipeline,
        wait_executions, write_json,
    };
    let s = Serve::start(&[]);
    plain_repo(&s, "front");
    let back = plain_repo(&s, "back");
    std::fs::write(back.join("README"), "backend\n").unwrap();
    git(&back, &["commit", "-q", "-am", "backend readme"]);
    let back_commit = git(&back, &["rev-parse", "HEAD"]);
    let conn = connection(&s);
    project_with(&s, "consoleboth", &two_source_buildspec(&[]));
    let deploy = |name: &str, input: &str, order: u64| {
        json!({"name": name, "runOrder": order,
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": "web", "Extract": "true", "ObjectKey": name},
            "inputArtifacts": [{"name": input}]})
    };
    let name = format!("consoletwo-{}", std::process::id());
    let definition = two_source_pipeline(
        &name,
        &conn,
        "consoleboth",
        json!({}),
        vec![deploy("Api", "Api", 2), deploy("Web", "Web", 1)],
    );
    let file = write_json(s.home.path(), &definition);
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let execs = wait_executions(&s, &name, 1);
    assert_eq!(execs[0]["status"], "Succeeded", "{execs:#?}");

    let page = get(&s.addr, &format!("/pipelines/{name}"));
    assert_eq!(page.status, 200);
    let body = &page.body;
    // Every action of every stage has its card, with its status.
    for action in ["Front", "Back", "Build", "Web", "Api"] {
        let at = body
            .find(&format!("data-action=\"{action}\""))
            .unwrap_or_else(|| panic!("no card for {action}: {body}"));
        let card = &body[at..at + body[at..].find("</li>").unwrap()];
        assert!(card.contains("st-succeeded"), "{action}: {card}");
    }
    // Both sources' revisions with their messages; the GitHub token is never shown.
    assert!(body.contains("GitHub"), "{body}");
    assert!(body.contains(&back_commit[..8]), "{body}");
    assert!(body.contains("backend readme"), "{body}");
    assert!(!body.contains("ghp_notarealtoken42"));
    // The build's two inputs and two outputs; the deploys in their run order.
    assert!(body.contains("in: Front, Back"), "{body}");
    assert!(body.contains("out: Web, Api"), "{body}");
    let (web, api) = (
        body.find("data-action=\"Web\"").unwrap(),
        body.find("data-action=\"Api\"").unwrap(),
    );
    assert!(web < api, "run order 1 before run order 2");
    assert!(body.contains("run order 2"));
    // The build card links to the build's page.
    let at = body.find("data-action=\"Build\"").unwrap();
    let link = body[at..]
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let build = get(&s.addr, link);
    assert_eq!(build.status, 200, "{link}");
    assert!(build.body.contains("Build consoleboth:1"), "{}", build.body);
    assert!(build.body.contains("pipeline"));
}

/// The status badge of a build page's summary.
fn page_status(body: &str) -> String {
    let at = body.find("<p class=\"status\">").expect("a status");
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    let rest = &rest[start..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().to_owned()
}

#[test]
fn console_requires_a_login_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIDLOCAL\naws_secret_access_key = s3cret\n",
    )
    .unwrap();
    let s = Serve::start(&["--credentials", creds.to_str().unwrap()]);
    let kind = ("Content-Type", "application/x-www-form-urlencoded");

    let anonymous = get(&s.addr, "/pipelines");
    assert_eq!(anonymous.status, 303);
    assert_eq!(
        anonymous.header("location").as_deref(),
        Some("/login?next=%2Fpipelines")
    );
    let login = get(&s.addr, "/login?next=%2Fpipelines");
    assert!(login.body.contains("Access key id"));

    let wrong = form(&[
        ("access_key_id", "AKIDLOCAL"),
        ("secret_access_key", "wrong"),
        ("next", "/pipelines"),
    ]);
    let refused = http(&s.addr, "POST", "/login", &[kind], &wrong);
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());

    let right = form(&[
        ("access_key_id", "AKIDLOCAL"),
        ("secret_access_key", "s3cret"),
        ("next", "/pipelines"),
    ]);
    let cross = http(
        &s.addr,
        "POST",
        "/login",
        &[kind, ("Origin", "http://evil.example")],
        &right,
    );
    assert_eq!(cross.status, 403);
    let ok = http(&s.addr, "POST", "/login", &[kind], &right);
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location").as_deref(), Some("/pipelines"));
    let cookie = ok.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    let page = http(&s.addr, "GET", "/builds", &[("Cookie", &session)], "");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("AKIDLOCAL"),
        "the page names who is logged in"
    );
    // The API still wants signatures: a cookie is not a signature.
    let api = http(
        &s.addr,
        "POST",
        "/",
        &[
            ("Cookie", &session),
            ("X-Amz-Target", "CodeBuild_20161006.ListProjects"),
        ],
        "{}",
    );
    assert_eq!(api.status, 400, "{}", api.body);

    // Buttons: the session's token is required (the right one is covered without
    // credentials); without a session a post goes to the login page.
    let stop = form(&[("op", "StopBuild"), ("id", "nope:1"), ("csrf", "guess")]);
    let r = http(
        &s.addr,
        "POST",
        "/console/action",
        &[kind, ("Cookie", &session)],
        &stop,
    );
    assert_eq!(r.status, 403);
    let r = http(&s.addr, "POST", "/console/action", &[kind], &stop);
    assert_eq!(r.status, 303, "no session: to the login page");
    assert!(r.header("location").unwrap().starts_with("/login"));

    // Logging out ends the session.
    let out = http(&s.addr, "POST", "/logout", &[("Cookie", &session)], "");
    assert_eq!(out.status, 303);
    let after = http(&s.addr, "GET", "/builds", &[("Cookie", &session)], "");
    assert_eq!(after.status, 303);
}

// ---------------------------------------------------------------------------------------
// In a browser

/// `chromedriver` on a free port with a fresh Chromium profile, and a WebDriver session.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// A browser with extra Chromium flags.
    fn start_with(extra: &[&str]) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/setup.sh installs chromium-driver)");
        eventually("chromedriver to listen", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a WebDriver session");
        let b = Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        };
        b.size(1280, 800);
        b
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn size(&self, w: u32, h: u32) {
        self.rt.block_on(self.c().set_window_size(w, h)).unwrap();
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    /// The text of every element matching `css`.
    fn texts(&self, css: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut out = vec![];
            if let Ok(found) = self.c().find_all(Locator::Css(css)).await {
                for e in found {
                    out.push(e.text().await.unwrap_or_default());
                }
            }
            out
        })
    }

    /// Poll the page until `cond` holds (at most `secs`).
    fn wait<T>(&self, what: &str, secs: u64, mut cond: impl FnMut(&Browser) -> Option<T>) -> T {
        within(Duration::from_secs(secs), || cond(self)).unwrap_or_else(|_| {
            let src = self.rt.block_on(self.c().source()).unwrap_or_default();
            panic!("timed out waiting for {what}; the page is:\n{src}");
        })
    }

    /// Click the element `css`. A live page may swap the element between finding and
    /// clicking it (a stale element): find it again, for at most 10 s.
    fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self
                .rt
                .block_on(async { self.c().find(Locator::Css(css)).await?.click().await });
            match r {
                Ok(_) => return,
                Err(e) if e.to_string().contains("stale") && Instant::now() < deadline => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Run a script in the page; its result.
    fn script(&self, js: &str) -> serde_json::Value {
        self.rt.block_on(self.c().execute(js, vec![])).unwrap()
    }

    /// Whether the page is wider than the window (a horizontal scrollbar).
    fn overflows(&self) -> bool {
        self.script("return document.documentElement.scrollWidth > window.innerWidth")
            == json!(true)
    }

    /// Press Tab until the focused element's text is `label` (at most `max` times).
    fn tab_to(&self, label: &str, max: usize) {
        for _ in 0..max {
            let focused = self.rt.block_on(async {
                let e = self.c().active_element().await?;
                e.send_keys("\u{E004}").await?;
                self.c().active_element().await?.text().await
            });
            if focused.is_ok_and(|t| t.trim() == label) {
                return;
            }
        }
        panic!("{label} is not reachable with Tab");
    }

    /// Press Enter on the focused element.
    fn press_enter(&self) {
        self.rt
            .block_on(async { self.c().active_element().await?.send_keys("\u{E007}").await })
            .unwrap();
    }

    /// Save a PNG under `target/console-screenshots/`.
    fn screenshot(&self, name: &str) {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        let dir = crate::util::root().join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn console_follows_a_running_build_and_stops_it() {
    let s = Serve::start(&[]);
    s.create_project(
        "console-live",
        &["for i in $(seq 1 600); do printf '\\033[32mtick %s\\033[0m\\n' $i; sleep 0.2; done"],
    );
    let started = s.start_build("console-live");
    let id = started["id"].as_str().unwrap().to_owned();
    let b = Browser::start();
    b.goto(started["logs"]["deepLink"].as_str().unwrap());

    // The BUILD bar appears and the log grows while the page stays open.
    b.wait("the BUILD bar", 120, |b| {
        (!b.texts("li.phase[data-phase=BUILD]").is_empty()).then_some(())
    });
    let ticks = |b: &Browser| b.texts("#log .ln .af2").len();
    let first = b.wait("coloured log lines", 60, |b| {
        let n = ticks(b);
        (n >= 2).then_some(n)
    });
    b.wait("more log lines, streamed", 60, |b| {
        (ticks(b) >= first + 5).then_some(())
    });
    assert_eq!(b.texts("#summary .status .st"), vec!["IN_PROGRESS"]);
    b.screenshot("build-running");

    // Stop with the keyboard: Tab from the top of the page to the Stop button, then Enter.
    b.tab_to("Stop", 40);
    b.press_enter();
    b.wait("STOPPED", 60, |b| {
        (b.texts("#summary .status .st") == ["STOPPED"]).then_some(())
    });
    assert_eq!(s.build(&id)["buildStatus"], "STOPPED");
    assert_eq!(b.texts("#summary button.primary"), vec!["Retry"]);
    b.screenshot("build-stopped");

    b.goto(&format!("http://{}/builds", s.addr));
    b.wait("the builds list", 10, |b| {
        (!b.texts("#builds tbody tr").is_empty()).then_some(())
    });
    assert!(b.texts("#builds td .st").contains(&"STOPPED".to_owned()));
    b.screenshot("builds");
    assert!(!b.overflows(), "the builds page fits 1280x800");
    b.size(390, 800);
    b.screenshot("builds-narrow");
    assert!(!b.overflows(), "the builds page fits a narrow screen");
    b.goto(started["logs"]["deepLink"].as_str().unwrap());
    b.wait("the build page", 10, |b| {
        (!b.texts("#log .ln").is_empty()).then_some(())
    });
    assert!(!b.overflows(), "the build page fits a narrow screen");
    b.screenshot("build-narrow");
}

#[test]
fn console_follows_the_colour_scheme() {
    let s = Serve::start(&[]);
    let background = |dark: bool| {
        let b = Browser::start_with(if dark {
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ]
        } else {
            &["--blink-settings=preferredColorScheme=1"]
        });
        b.goto(&format!("http://{}/builds", s.addr));
        b.wait("the builds page", 10, |b| {
            (!b.texts("h1").is_empty()).then_some(())
        });
        b.screenshot(if dark { "builds-dark" } else { "builds-light" });
        b.script("return getComputedStyle(document.body).backgroundColor")
    };
    assert_eq!(background(false), json!("rgb(255, 255, 255)"));
    assert_eq!(background(true), json!("rgb(15, 20, 25)"));
}

#[test]
fn console_shows_a_pipeline_turn_green_after_a_commit() {
    use crate::pipeline::{connection, declaration, project, wait_executions, write_json};
    let s = Serve::start(&[]);
    let name = format!("console-{}", std::process::id());
    let repo = s.home.path().join("git/acme/web");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"building $COMMIT\"\n      - echo ok > out.txt\nartifacts:\n  files:\n    - out.txt\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first version"]);
    let conn = connection(&s);
    project(&s, "consolebuild", "localbuild-test/busybox:1", false);
    let file = write_json(
        s.home.path(),
        &declaration(&name, &conn, "consolebuild", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);

    let b = Browser::start();
    b.goto(&format!("http://{}/pipelines/{name}", s.addr));
    let stage_status =
        |b: &Browser, stage: &str| b.texts(&format!("section.stage[data-stage={stage}] h2 .st"));
    b.wait("both stages Succeeded", 180, |b| {
        (stage_status(b, "Source") == ["Succeeded"] && stage_status(b, "Build") == ["Succeeded"])
            .then_some(())
    });
    assert_eq!(wait_executions(&s, &name, 1)[0]["status"], "Succeeded");
    assert!(
        b.texts("#history tbody tr")[0].contains("first version"),
        "the history shows the commit message"
    );
    b.screenshot("pipeline");

    // A commit: the watcher starts a second execution, and the page follows it live.
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "second version"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    b.wait("the second execution, Succeeded", 180, |b| {
        let rows = b.texts("#history tbody tr");
        (rows.len() == 2
            && rows[0].contains("second version")
            && rows[0].contains("Succeeded")
            && stage_status(b, "Build") == ["Succeeded"])
        .then_some(())
    });
    let rev = b.texts("section.stage[data-stage=Source] .rev code");
    assert_eq!(rev, vec![second[..8].to_owned()]);
    // The history: trigger and duration of each execution.
    let rows = b.texts("#history tbody tr");
    assert!(rows[0].contains("PollForSourceChanges"), "{rows:?}");
    assert!(rows[1].contains("CreatePipeline"), "{rows:?}");
    assert!(
        rows.iter().all(|r| r.trim_end().ends_with('s')),
        "durations: {rows:?}"
    );
    b.screenshot("pipeline-second-run");
    assert!(!b.overflows(), "the pipeline page fits 1280x800");

    // The build card links to the build's console page, which the API names too.
    b.click("section.stage[data-stage=Build] .card a");
    b.wait("the pipeline's build page", 30, |b| {
        let t = b.texts("h1");
        (t.len() == 1 && t[0].starts_with("Build consolebuild:")).then_some(())
    });
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    let url = state["stageStates"][1]["actionStates"][0]["latestExecution"]["externalExecutionUrl"]
        .as_str()
        .unwrap();
    let here = b.rt.block_on(b.c().current_url()).unwrap();
    assert_eq!(here.as_str(), url);
    assert!(b.texts("dd").iter().any(|t| t.contains("pipeline")));

    b.goto(&format!("http://{}/pipelines", s.addr));
    let rows = b.wait("the pipelines list", 10, |b| {
        let rows = b.texts("#pipelines tbody tr");
        (!rows.is_empty()).then_some(rows)
    });
    assert!(
        rows[0].contains(&name) && rows[0].contains("Succeeded"),
        "{rows:?}"
    );
    b.screenshot("pipelines");
    b.goto(&format!("http://{}/projects", s.addr));
    b.screenshot("projects");

    // A narrow screen: the stages stack, nothing is wider than the window.
    b.size(390, 800);
    b.goto(&format!("http://{}/pipelines/{name}", s.addr));
    b.wait("the pipeline page", 10, |b| {
        (!b.texts("section.stage").is_empty()).then_some(())
    });
    assert!(!b.overflows(), "the pipeline page fits a narrow screen");
    b.screenshot("pipeline-narrow");
}

#[test]
fn console_approves_a_manual_approval_and_toggles_a_transition() {
    use crate::pipeline::{connection, inline_project, plain_repo, staged, write_json};
    let s = Serve::start(&[]);
    let name = format!("approve-{}", std::process::id());
    let conn = connection(&s);
    plain_repo(&s, "approved");
    inline_project(&s, "approvedbuild", &["echo approved build"]);
    let file = write_json(
        s.home.path(),
        &staged(&name, &conn, "approved", "approvedbuild", true),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);

    let b = Browser::start();
    b.goto(&format!("http://{}/pipelines/{name}", s.addr));
    let stage_status =
        |b: &Browser, stage: &str| b.texts(&format!("section.stage[data-stage={stage}] h2 .st"));
    // The approval waits with its buttons; the build stage is not reached.
    b.wait("the approval waiting", 120, |b| {
        (stage_status(b, "Approve") == ["InProgress"]
            && !b
                .texts("li.card[data-action=Approval] button.primary")
                .is_empty())
        .then_some(())
    });
    assert!(stage_status(&b, "Build").is_empty());
    b.screenshot("pipeline-approval");
    b.click("li.card[data-action=Approval] button.primary");
    b.wait("the approval and the build Succeeded", 180, |b| {
        (stage_status(b, "Approve") == ["Succeeded"] && stage_status(b, "Build") == ["Succeeded"])
            .then_some(())
    });
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    let approval = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert_eq!(approval["status"], "Succeeded");
    assert_eq!(approval["summary"], "Approved from the localbuild console");

    // Disable the transition into Build from the page, then enable it again.
    b.click("div.transition[data-stage=Build] button");
    b.wait("the transition disabled", 30, |b| {
        (!b.texts("div.transition.disabled[data-stage=Build]")
            .is_empty())
        .then_some(())
    });
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"],
        false
    );
    b.click("div.transition[data-stage=Build] button");
    b.wait("the transition enabled", 30, |b| {
        (b.texts("div.transition.disabled[data-stage=Build]")
            .is_empty())
        .then_some(())
    });
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"],
        true
    );

    // Release change starts a second execution, which waits at the approval; Stop and
    // abandon ends it there.
    b.click("main > .buttons button.primary");
    b.wait("the second execution waiting for approval", 120, |b| {
        let rows = b.texts("#history tbody tr");
        (rows.len() == 2
            && rows[0].contains("StartPipelineExecution")
            && stage_status(b, "Approve") == ["InProgress"])
        .then_some(())
    });
    b.click("section.stage[data-stage=Approve] button.abandon");
    b.wait("the second execution Stopped", 60, |b| {
        let rows = b.texts("#history tbody tr");
        (rows.len() == 2 && rows[0].contains("Stopped")).then_some(())
    });
    let execs = s.ok(&[
        "codepipeline",
        "list-pipeline-executions",
        "--pipeline-name",
        &name,
    ]);
    assert_eq!(execs["pipelineExecutionSummaries"][0]["status"], "Stopped");
    assert_eq!(
        execs["pipelineExecutionSummaries"][0]["trigger"]["triggerType"],
        "StartPipelineExecution"
    );

    // A third execution, rejected from its card: the approval and the execution fail.
    b.click("main > .buttons button.primary");
    b.wait("the third execution waiting for approval", 120, |b| {
        let rows = b.texts("#history tbody tr");
        (rows.len() == 3 && stage_status(b, "Approve") == ["InProgress"]).then_some(())
    });
    b.click("li.card[data-action=Approval] button.danger");
    b.wait("the third execution Failed", 60, |b| {
        let rows = b.texts("#history tbody tr");
        (rows.len() == 3 && rows[0].contains("Failed")).then_some(())
    });
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    let approval = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert_eq!(approval["status"], "Failed", "{state:#}");
    assert_eq!(approval["summary"], "Rejected from the localbuild console");
}
