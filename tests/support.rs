//! What the end-to-end tests share: the real backend on a free port, serving the built page, and
//! headless Chromium driven through chromedriver.

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub mod synthetic;

/// The backend, serving `dist/` on a free loopback port until dropped.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// The built page, as `trunk build --release` leaves it: `dist/`, or the folder
/// `CROSSTALK_DIST` names (a benchmark can compare two builds of the page).
pub fn dist_dir() -> PathBuf {
    let dist = std::env::var_os("CROSSTALK_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist"));
    assert!(
        dist.join("index.html").is_file(),
        "{} has no index.html: build the page first (`trunk build --release`; scripts/test.sh does)",
        dist.display()
    );
    dist
}

/// Starts the real backend, the one `crosstalk serve` runs, on 127.0.0.1 and a free port.
pub async fn start_backend() -> Backend {
    start_backend_with(axum::Router::new()).await
}

/// The same, also answering `extra`'s routes (a benchmark serves its synthetic traces so).
pub async fn start_backend_with(extra: axum::Router) -> Backend {
    let config = backend::ServerConfig {
        dist_dir: dist_dir(),
        ..Default::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let app = backend::app(backend::AppState::new(config)).merge(extra);
    tokio::spawn(backend::run(listener, app, async move {
        let _ = stopped.await;
    }));
    Backend { addr, _stop: stop }
}

/// chromedriver in a process group of its own, killed with everything it started (the browser
/// and its helpers) on drop, so no test — passing or failing — leaves a browser running.
struct KillGroupOnDrop(Child);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// Headless Chromium under chromedriver, closed on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: KillGroupOnDrop,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port and opens a headless Chromium session at `width`×`height`.
pub async fn start_browser(width: u32, height: u32) -> Browser {
    let port = free_port();
    let driver = KillGroupOnDrop(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/setup.sh installs it)"),
    );
    let profile = std::env::temp_dir().join(format!("crosstalk-e2e-{port}"));
    let Value::Object(capabilities) = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    }) else {
        unreachable!("a JSON object literal")
    };
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen; retry until it does.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connected = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        match connected {
            Ok(client) => {
                let browser = Browser {
                    client,
                    _driver: driver,
                };
                browser.record_csp_violations().await;
                return browser;
            }
            Err(err) if Instant::now() > deadline => {
                panic!("chromedriver gave no session within 20 s: {err}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Browser {
    /// Ends the session, so the browser quits cleanly (dropping kills it instead).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Runs `script` in the page and returns its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Sends one Chrome DevTools Protocol command (`Network.emulateNetworkConditions`,
    /// `Page.captureScreenshot`, …) to the page's target through chromedriver, and returns its
    /// result.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        self.client
            .issue_cmd(DevToolsCommand {
                command: command.to_string(),
                params,
            })
            .await
            .unwrap_or_else(|err| panic!("DevTools command {command} failed: {err}"))
    }

    /// Scrolls the first element matching `selector` into view, as a reader scrolling to it.
    pub async fn scroll_into_view(&self, selector: &str) {
        let script = format!(
            "document.querySelector({}).scrollIntoView(); return true",
            serde_json::to_string(selector).expect("a string")
        );
        self.js(&script).await;
    }

    /// Polls `script` until it returns `true`, or fails with `what` after `timeout`.
    pub async fn wait_until(&self, script: &str, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while self.js(script).await != Value::Bool(true) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// From now on, keeps what the page writes to `console.error` (a panic in the WebAssembly
    /// lands there) and any uncaught error, for [`Browser::console_errors`].
    pub async fn capture_console_errors(&self) {
        self.js(
            "window.__crosstalkErrors = [];
             const original = console.error;
             console.error = (...args) => { window.__crosstalkErrors.push(args.join(' ')); original(...args); };
             window.addEventListener('error', e => window.__crosstalkErrors.push(String(e.message)));
             return true;",
        )
        .await;
    }

    /// In every document this browser opens from now on, before any of its own scripts run,
    /// records each Content-Security-Policy violation (what the policy blocked, and where) in
    /// `window.__crosstalkCspViolations`, for [`Browser::csp_violations`].
    async fn record_csp_violations(&self) {
        let recorder = "window.__crosstalkCspViolations = [];
            document.addEventListener('securitypolicyviolation', e => window.__crosstalkCspViolations.push(
                `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}: ${e.sample}`
            ), true);";
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": recorder }),
        )
        .await;
    }

    /// The Content-Security-Policy violations the current document has raised so far.
    pub async fn csp_violations(&self) -> Vec<String> {
        let violations = self
            .js("return window.__crosstalkCspViolations ?? null")
            .await;
        let violations = violations
            .as_array()
            .expect("the violation recorder runs in every document the browser opens");
        violations
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// What [`Browser::capture_console_errors`] has caught so far.
    pub async fn console_errors(&self) -> Vec<String> {
        let errors = self.js("return window.__crosstalkErrors || []").await;
        errors
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(String::from))
            .collect()
    }

    /// Opens `url` and waits (at most `timeout`) until the page has its whole trace; returns the
    /// trace hash it shows.
    pub async fn open_and_wait(&self, url: &str, timeout: Duration) -> String {
        self.client.goto(url).await.unwrap();
        self.capture_console_errors().await;
        let ready = "const e = document.querySelector('#trace-hash'); return !!e && e.dataset.ready === 'true'";
        self.wait_until(ready, timeout, &format!("the trace of {url}"))
            .await;
        self.text("#trace-hash").await
    }

    /// Clicks the first element matching `selector` as a user would (it must be visible).
    pub async fn click(&self, selector: &str) {
        self.client
            .find(fantoccini::Locator::Css(selector))
            .await
            .unwrap_or_else(|err| panic!("no {selector} to click: {err}"))
            .click()
            .await
            .unwrap_or_else(|err| panic!("could not click {selector}: {err}"));
    }

    /// The text of the first element matching `selector`, or "" when there is none.
    pub async fn text(&self, selector: &str) -> String {
        let script = format!(
            "const e = document.querySelector({selector:?}); return e ? e.textContent.trim() : ''"
        );
        self.js(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> u64 {
        self.js(&format!(
            "return document.querySelectorAll({selector:?}).length"
        ))
        .await
        .as_u64()
        .unwrap_or(0)
    }
}

/// chromedriver's way through to the DevTools protocol: `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct DevToolsCommand {
    command: String,
    params: Value,
}

impl WebDriverCompatibleCommand for DevToolsCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.command, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}
